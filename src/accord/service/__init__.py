"""Customer service: tickets, SLAs, knowledge base, assistant, surveys."""
