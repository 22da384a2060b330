"""Every table, importable from one place (Alembic's target metadata)."""

from accord.models.access import ApiToken, AuditEntry, Team, User, WebSession
from accord.models.analytics import AnalyticsRun, KpiValue, MarketingSpend
from accord.models.analytics_recommendations import CustomerRecommendation, ProductAssociation
from accord.models.analytics_scores import CustomerScore, ScoreModel
from accord.models.base import Base
from accord.models.commerce import Order, OrderLine, Product
from accord.models.customer import (
    Account,
    Contact,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomFieldDefinition,
    CustomFieldValue,
    LifecycleChange,
)
from accord.models.integration import (
    GoldenLineage,
    IdentityAlias,
    IdentityChange,
    ImportRejection,
    ImportRun,
    MatchModel,
    MatchReview,
    Source,
    SourceProfile,
    SourceRecord,
)
from accord.models.interaction import Interaction
from accord.models.system import IdempotencyKey, Job, OutboxEvent

__all__ = [
    "AnalyticsRun",
    "CustomerRecommendation",
    "CustomerScore",
    "ProductAssociation",
    "KpiValue",
    "MarketingSpend",
    "ScoreModel",
    "SourceRecord",
    "SourceProfile",
    "Source",
    "MatchReview",
    "MatchModel",
    "ImportRun",
    "ImportRejection",
    "IdentityChange",
    "IdentityAlias",
    "GoldenLineage",
    "Account",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Contact",
    "Customer",
    "CustomerAddress",
    "CustomerEmail",
    "CustomerPhone",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "IdempotencyKey",
    "Interaction",
    "Job",
    "LifecycleChange",
    "Order",
    "OrderLine",
    "OutboxEvent",
    "Product",
    "Team",
    "User",
    "WebSession",
]
