"""Reference texts of the demo's customer service: ticket conversations and help articles.

Ticket texts are templates (``{product}``, ``{order}``, ``{first}``) per category; each customer
message comes in a calm and an upset variant, so sentiment, escalation and the 360 trend have
something real to show. Help articles are written out in full: the assistant and the search
benchmark answer from them.
"""

from __future__ import annotations

Texts = tuple[str, ...]
# category → (subjects, calm customer messages, upset customer messages, agent replies)
CONVERSATIONS: dict[str, tuple[Texts, Texts, Texts, Texts]] = {
    "delivery": (
        ("Where is my order {order}?", "Order {order} has not arrived", "Delivery status"),
        ("Hello, I ordered the {product} last week (order {order}) and it has not arrived yet. "
         "Could you tell me where it is? Thanks, {first}",
         "Hi, the tracking for order {order} has not changed for three days. Is everything "
         "alright with the parcel? Kind regards, {first}"),
        ("This is the third time I am writing about order {order}. The {product} still has not "
         "arrived and nobody answers. This is terrible service and I want a refund now.",
         "My order {order} is two weeks late. I am really disappointed and angry, I needed the "
         "{product} for a trip that I have now missed."),
        ("Hi {first}, thank you for your patience. Your order {order} left our warehouse and the "
         "carrier expects to deliver it within two working days.",
         "Hello {first}, I am sorry for the delay. I have asked the carrier to trace the parcel "
         "for order {order} and will update you tomorrow."),
    ),
    "returns": (
        ("Return for order {order}", "How do I return the {product}?", "Refund question"),
        ("Hi, the {product} does not fit. How can I return it and get a refund? Thanks, {first}",
         "Hello, I sent the {product} back last Monday. When will I see the refund? {first}"),
        ("I returned the {product} a month ago and still have no refund. This is unacceptable, "
         "I will not shop with you again.",
         "Your returns portal keeps failing and I am fed up. Order {order}, the {product} is "
         "broken and I want my money back."),
        ("Hi {first}, you can return the {product} within 60 days. I have e-mailed you a free "
         "return label for order {order}.",
         "Hello {first}, your return arrived and the refund for order {order} was issued today; "
         "it shows on your statement within five working days."),
    ),
    "warranty": (
        ("Warranty claim: {product}", "{product} damaged after two months", "Defect"),
        ("Hello, the sole of my {product} is coming loose after two months. Is this covered by "
         "the warranty? Thanks, {first}",
         "Hi, the zip on the {product} broke. Can it be repaired under warranty? {first}"),
        ("The {product} fell apart after three weeks. Awful quality, I am very unhappy and "
         "expect a replacement immediately.",
         "Second {product} with the same defect. This is ridiculous, I am done with your "
         "brand unless you fix this."),
        ("Hi {first}, the {product} has a two-year warranty. Please send us two photos of the "
         "damage and we will arrange a replacement.",
         "Hello {first}, we have approved your warranty claim and a replacement {product} is "
         "on its way."),
    ),
    "billing": (
        ("Invoice for order {order}", "Charged twice", "Payment question"),
        ("Hello, could you send me an invoice with our VAT number for order {order}? {first}",
         "Hi, which payment methods do you accept for orders over 500 EUR? Thanks, {first}"),
        ("You charged my card twice for order {order}! Fix this now, this is outrageous.",
         "I was billed for a {product} I never ordered. I am angry and will dispute the charge."),
        ("Hi {first}, I have attached the invoice for order {order} with your VAT number.",
         "Hello {first}, you are right, the second charge was an error; it has been refunded."),
    ),
    "product": (
        ("Question about the {product}", "Sizing of the {product}", "Care instructions"),
        ("Hi, does the {product} run true to size? I am usually a 42. Thanks, {first}",
         "Hello, how should I wash the {product}? I love it and want it to last. {first}"),
        ("The {product} description was completely misleading. Not waterproof at all, I got "
         "soaked. Very disappointed.",
         "Terrible advice from your store staff about the {product}. It is useless for what I "
         "needed."),
        ("Hi {first}, the {product} fits true to size; if you are between sizes choose the "
         "larger one.",
         "Hello {first}, wash the {product} at 30 degrees and reproof it once a season."),
    ),
    "account": (
        ("Cannot log in", "Change my address", "Loyalty points missing"),
        ("Hello, I would like to change the delivery address on my account. Thanks, {first}",
         "Hi, my loyalty points for order {order} are not showing. Could you check? {first}"),
        ("I have tried to reset my password five times and it never works. Frustrating and "
         "useless.",
         "My loyalty points disappeared. This is the worst customer experience I have had."),
        ("Hi {first}, I have updated your address; future orders will go there.",
         "Hello {first}, the points for order {order} are now on your account."),
    ),
}

PHONE_NOTES = (
    "Customer called about {subject_lc}; explained the next steps and promised an e-mail.",
    "Inbound call: {subject_lc}. Checked order {order} with the customer.",
)

INTERNAL_NOTES = (
    "Checked the warehouse system: order {order} is in the last carrier scan.",
    "Asked the returns team to prioritise this one.",
    "Customer is a loyalty member; offered a goodwill voucher.",
)

CANNED_REPLIES: tuple[tuple[str, str, str | None], ...] = (
    ("Thanks for your patience",
     "Hi {{ customer.first_name }},\n\nthank you for your patience. I am looking into this "
     "now and will get back to you by {{ ticket.due }}.\n\nBest regards,\n{{ agent.name }}",
     None),
    ("Return label sent",
     "Hi {{ customer.first_name }},\n\nI have e-mailed you a free return label. Please drop "
     "the parcel at any post office within 14 days.\n\n{{ agent.name }}", "returns"),
    ("Warranty photos please",
     "Hi {{ customer.first_name }},\n\nsorry to hear that. Please send us two photos of the "
     "damage and the order number, and we will arrange a replacement.\n\n{{ agent.name }}",
     "warranty"),
)

KB_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("orders-delivery", "Orders and delivery"),
    ("returns-refunds", "Returns and refunds"),
    ("warranty-repairs", "Warranty and repairs"),
    ("products-care", "Products and care"),
    ("account-payment", "Account and payment"),
    ("internal-procedures", "Internal procedures"),
)

# slug, category slug, visibility, title, body
KB_ARTICLES: tuple[tuple[str, str, str, str, str], ...] = (
    ("delivery-times", "orders-delivery", "public", "How long does delivery take?",
     "Orders placed before 2 pm on a working day leave our warehouse the same day. Standard "
     "delivery takes 2 to 4 working days in Germany, the Netherlands and the UK, and 3 to 6 "
     "working days elsewhere in Europe. Express delivery arrives the next working day when "
     "ordered before noon. Delivery to the United States takes 5 to 8 working days."),
    ("track-order", "orders-delivery", "public", "How do I track my order?",
     "When your order ships you receive an e-mail with a tracking link. You can also follow "
     "every order under My account, Orders. Tracking can take up to 24 hours to show the "
     "first scan. If the tracking has not changed for five working days, contact us and we "
     "will ask the carrier to trace the parcel."),
    ("change-address", "orders-delivery", "public", "Can I change my delivery address?",
     "You can change the delivery address of an order until it ships: open the order under "
     "My account and choose Change address. Once the order has shipped the carrier cannot "
     "redirect it, but you can refuse the parcel and it returns to us for a full refund."),
    ("cancel-order", "orders-delivery", "public", "How do I cancel an order?",
     "Orders can be cancelled within one hour of purchase under My account, Orders, Cancel. "
     "After that the order is being packed; please wait for it to arrive and return it free "
     "of charge within 60 days."),
    ("return-policy", "returns-refunds", "public", "What is your return policy?",
     "You can return unworn items within 60 days of delivery for a full refund. Returns are "
     "free within Europe: print the return label from My account, Returns, or ask our support "
     "team to e-mail it to you. Footwear must be returned in its original box. Items bought "
     "in a store can be returned in any of our stores."),
    ("refund-time", "returns-refunds", "public", "When will I get my refund?",
     "We issue the refund within three working days after your return arrives at our "
     "warehouse. Your bank then needs up to five working days to show it on your statement. "
     "Refunds always go back to the original payment method."),
    ("exchange-size", "returns-refunds", "public", "Can I exchange an item for another size?",
     "Yes. Start a return under My account, Returns and choose Exchange. We send the new size "
     "as soon as the carrier scans your return, so you do not have to wait for it to arrive."),
    ("warranty", "warranty-repairs", "public", "What does the warranty cover?",
     "All our products carry a two-year warranty against manufacturing defects such as "
     "loose soles, broken zips or failing seams. Normal wear, accidents and misuse are not "
     "covered. To make a claim, send us two photos of the damage and your order number; we "
     "repair or replace the product free of charge."),
    ("boot-resoling", "warranty-repairs", "public", "Can my hiking boots be resoled?",
     "Summit Mid GTX hiking boots can be resoled by our repair partner for 59 EUR, including "
     "return shipping. Resoling takes about three weeks. Boots with a damaged upper or "
     "membrane cannot be resoled."),
    ("waterproof-jacket-care", "products-care", "public", "How do I wash a waterproof jacket?",
     "Wash your Stormshell jacket at 30 degrees with a technical detergent, never with "
     "fabric softener. Close all zips first. Tumble dry on low heat for 20 minutes to "
     "reactivate the water-repellent finish, and reproof it once a season with a spray-on "
     "treatment."),
    ("shoe-sizing", "products-care", "public", "How do your shoes fit?",
     "Our trail and road running shoes fit true to size. If you are between two sizes, choose "
     "the larger one. Hiking boots are cut for thicker socks; choose your usual size. Measure "
     "your foot in the evening and compare it with the size chart on each product page."),
    ("merino-care", "products-care", "public", "How do I care for merino wool?",
     "Wash merino clothing inside out on a wool cycle at 30 degrees and dry it flat. Merino "
     "resists odour, so airing it often replaces a wash. Do not tumble dry."),
    ("payment-methods", "account-payment", "public", "Which payment methods do you accept?",
     "We accept Visa, Mastercard, American Express, PayPal, Klarna invoice and bank transfer. "
     "Business customers can pay on invoice with 30 days' terms after a credit check. Orders "
     "over 500 EUR paid by card may need 3-D Secure confirmation."),
    ("loyalty-points", "account-payment", "public", "How does the loyalty programme work?",
     "Members earn one point per euro spent. Points appear on your account 14 days after "
     "delivery, once the return window has passed. 500 points give a 25 EUR voucher. Premium "
     "members get free express delivery."),
    ("reset-password", "account-payment", "public", "I cannot log in to my account",
     "Use Forgot password on the login page; the reset link is valid for one hour. Check your "
     "spam folder if the e-mail does not arrive within five minutes. After five failed "
     "attempts the account is locked for 15 minutes."),
    ("invoice-vat", "account-payment", "public", "How do I get an invoice with my VAT number?",
     "Add your VAT number under My account, Company details before ordering and it appears on "
     "every invoice. For an order already placed, ask our support team and we will issue a "
     "corrected invoice within one working day."),
    ("refund-approval", "internal-procedures", "internal", "Approving goodwill refunds",
     "Agents may approve goodwill refunds up to 50 EUR without a manager. Refunds above 50 EUR "
     "need the service manager's approval in the ticket as an internal note. Never refund to "
     "a different payment method than the original."),
    ("escalation-guide", "internal-procedures", "internal", "When to escalate a ticket",
     "Escalate to the service manager when a platinum or gold customer is upset, when a "
     "safety issue is reported, or when a ticket has breached its resolution target. Use the "
     "Escalate button and write the reason; the manager is alerted at once."),
)
