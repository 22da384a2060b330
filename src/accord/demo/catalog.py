"""Fixed reference data of the demo company: teams, users, products, texts of interactions."""

from __future__ import annotations

TEAMS: tuple[tuple[str, str], ...] = (
    ("Sales North", "Account executives for the UK, Germany, the Netherlands and Sweden"),
    ("Sales South", "Account executives for France, Spain, Italy and the United States"),
    ("Support", "Customer service: orders, returns, warranty"),
    ("Marketing", "Campaigns, newsletters and social media"),
)

DEMO_DOMAIN = "demo.example.com"
# local part, full name, role, team
DEMO_USERS: tuple[tuple[str, str, str, str | None], ...] = (
    ("admin", "Alex Admin", "admin", None),
    ("manager", "Morgan Manager", "manager", "Sales North"),
    ("sales.north", "Nora North", "sales", "Sales North"),
    ("sales.south", "Sergio South", "sales", "Sales South"),
    ("support", "Sam Support", "support", "Support"),
    ("support.two", "Theo Tickets", "support", "Support"),
    ("service.manager", "Siobhan Service", "manager", "Support"),
    ("marketing", "Mia Marketing", "marketing", "Marketing"),
    ("analyst", "Ana Analyst", "analyst", None),
    ("privacy", "Pat Privacy", "privacy_officer", None),
)

# sku stem, name, category, price in EUR cents
PRODUCTS: tuple[tuple[str, str, str, int], ...] = (
    ("FTW-TRAIL-01", "Ridgeline Trail Runner", "footwear", 12990),
    ("FTW-ROAD-02", "Tempo Road Shoe", "footwear", 10990),
    ("FTW-HIKE-03", "Summit Mid GTX Hiking Boot", "footwear", 17990),
    ("FTW-CASL-04", "Harbour Leather Sneaker", "footwear", 8990),
    ("FTW-KIDS-05", "Puddle Kids Waterproof Boot", "footwear", 4990),
    ("FTW-SAND-06", "Coastline Sandal", "footwear", 3990),
    ("APP-JACK-01", "Stormshell 3L Jacket", "apparel", 24990),
    ("APP-FLEE-02", "Alpine Grid Fleece", "apparel", 7990),
    ("APP-TEES-03", "Merino Trail Tee", "apparel", 4990),
    ("APP-PANT-04", "Traverse Softshell Pants", "apparel", 8990),
    ("APP-DOWN-05", "Polar Down Parka", "apparel", 29990),
    ("APP-SOCK-06", "Cushioned Hiking Socks (3-pack)", "apparel", 1990),
    ("APP-BASE-07", "Thermal Base Layer Set", "apparel", 6990),
    ("APP-CAPS-08", "Sun Visor Cap", "apparel", 2490),
    ("EQP-PACK-01", "Daytripper 28L Backpack", "equipment", 8990),
    ("EQP-PACK-02", "Expedition 65L Pack", "equipment", 21990),
    ("EQP-TENT-03", "Featherlite 2P Tent", "equipment", 34990),
    ("EQP-SLBG-04", "Three-Season Sleeping Bag", "equipment", 15990),
    ("EQP-POLE-05", "Carbon Trekking Poles", "equipment", 9990),
    ("EQP-LAMP-06", "Lumen 400 Headlamp", "equipment", 3990),
    ("EQP-STOV-07", "Compact Gas Stove", "equipment", 4990),
    ("EQP-BOTL-08", "Insulated Bottle 750 ml", "equipment", 2990),
    ("EQP-WATC-09", "Trail GPS Watch", "equipment", 29900),
    ("EQP-MATS-10", "Self-inflating Sleeping Mat", "equipment", 7990),
    ("ACC-GLOV-01", "Windproof Gloves", "accessories", 2990),
    ("ACC-BEAN-02", "Merino Beanie", "accessories", 2490),
    ("ACC-SUNG-03", "Polarised Sunglasses", "accessories", 5990),
    ("ACC-WASH-04", "Tech Wash & Reproofer", "accessories", 1490),
    ("ACC-LACE-05", "Spare Laces", "accessories", 490),
    ("ACC-INSL-06", "Orthotic Insoles", "accessories", 3490),
    ("SRV-WARR-01", "Extended Warranty (2 years)", "services", 2990),
    ("SRV-RPRS-02", "Boot Resoling Service", "services", 5990),
    ("SRV-FITS-03", "In-store Gait Analysis", "services", 1990),
    ("SRV-GIFT-04", "Gift Card 50", "services", 5000),
    ("SRV-GIFT-05", "Gift Card 100", "services", 10000),
    ("SRV-CORP-06", "Corporate Team Outfitting Package", "services", 149000),
)
CATEGORIES = ("footwear", "apparel", "equipment", "accessories")
# EUR → other price lists, rounded to .99/.90 the way shops do
FX = {"EUR": 1.0, "GBP": 0.86, "USD": 1.09}

INDUSTRIES = ("Retail", "Outdoor education", "Logistics", "Healthcare", "Construction",
              "Hospitality", "Public sector", "Manufacturing", "Software", "Tourism",
              "Sports clubs", "Utilities")

NEWSLETTERS = (
    "Spring collection is here", "Summer trail guide: 10 routes", "Autumn layering essentials",
    "Winter sale: up to 40% off", "New arrivals in footwear", "Members' weekend: double points",
    "Your monthly adventure digest", "Black Friday preview", "Back in stock: your favourites",
    "How to care for waterproof gear",
)
CAMPAIGNS = ("spring-launch", "summer-trails", "autumn-layers", "winter-sale", "black-friday",
             "members-weekend", "back-in-stock", "care-guide")
SMS_MARKETING = ("Flash sale today only: 25% off boots", "Your member voucher expires Sunday",
                 "Weekend event at your local store")
WEB_EVENTS = ("Viewed product page", "Browsed category", "Added item to basket",
              "Compared products", "Read size guide", "Searched the shop", "Saved item to wishlist")
APP_EVENTS = ("Opened the app", "Scanned a product in store", "Checked order status",
              "Enabled push notifications", "Viewed personalised offers")
SUPPORT = (
    ("Where is my order?", "Customer asked for the delivery status of their last order."),
    ("Return request", "Item did not fit; return label sent."),
    ("Size exchange", "Exchanged for one size up, no charge."),
    ("Warranty claim", "Seam failure after 8 months; replacement approved."),
    ("Password reset", "Could not log in to the webshop; reset link sent."),
    ("Product question", "Asked whether the jacket is suitable for ski touring."),
    ("Damaged parcel", "Box arrived damaged; photos received, replacement shipped."),
    ("Cancel order", "Asked to cancel before dispatch."),
)
BILLING = (
    ("Invoice copy request", "Sent a copy of the invoice as PDF."),
    ("Payment failed", "Card declined; customer updated the payment method."),
    ("Refund status", "Refund confirmed, 3-5 working days."),
    ("VAT receipt", "Issued a VAT receipt with the company address."),
)
SALES_B2B = (
    ("Quarterly business review", "Reviewed order volumes and upcoming team events."),
    ("Quote follow-up", "Followed up on the outfitting quote; decision expected next month."),
    ("Volume discount request", "Asked for tiered pricing above 50 units."),
    ("Introductory call", "Discovery call about outfitting field staff."),
    ("Contract renewal", "Discussed renewing the annual supply agreement."),
)
STORE_VISITS = ("Store visit: fitting appointment", "Store visit: click & collect pick-up",
                "Store visit: browsing, spoke to staff", "Store visit: repair drop-off")
SOCIAL = (("Mentioned us on Instagram", "Posted a photo from a summit wearing our jacket."),
          ("Complaint on X", "Complained about slow delivery; moved to DM."),
          ("Review on Facebook", "Left a 5-star review of the trail runners."))

NOTES = (
    "Prefers to be called after 6 pm.",
    "Asked not to receive promotional phone calls.",
    "VIP: handle complaints personally.",
    "Needs large-print documents.",
    "Runs a hiking club; potential group orders.",
    "Had a bad experience with a courier in the past; offer tracked delivery.",
    "Allergic to wool: avoid merino recommendations.",
    "Spouse is also a customer; keep accounts separate.",
)
JOB_TITLES = ("Procurement Manager", "Office Manager", "Head of Facilities", "HR Director",
              "Operations Lead", "Purchasing Assistant", "Team Lead Field Services", "CFO",
              "Health & Safety Officer", "Events Coordinator")
