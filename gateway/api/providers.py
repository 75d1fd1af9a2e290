"""GET /api/providers/: the provider names a job may choose per stage (pipeline_config.providers)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields

from gateway import jobs
from gateway.api import auth, ratelimit
from gateway.api.guards import counted, guarded
from gateway.api.parsing import Blueprint
from gateway.services import get_services

blp = Blueprint("providers", __name__, url_prefix="/api/providers", description="Provider choices")
blp.before_request(auth.authenticate)
blp.before_request(ratelimit.check)
blp.after_request(ratelimit.add_headers)


class StageProvidersSchema(ma.Schema):
    """One stage's providers."""

    default = fields.String(
        metadata={"description": "What a job runs unless it names a provider.", "example": "fast"}
    )
    available = fields.List(
        fields.String(),
        metadata={"description": "Every name a job may give.", "example": ["default", "fast"]},
    )


class ProvidersSchema(ma.Schema):
    """The providers of each stage."""

    extraction = fields.Nested(StageProvidersSchema)
    analysis = fields.Nested(StageProvidersSchema)
    enrichment = fields.Nested(StageProvidersSchema)


@blp.route("/")
@blp.response(200, ProvidersSchema, headers=counted())
@guarded(blp)
def providers() -> dict[str, Any]:
    """The provider names each stage offers, and the one it runs by default."""
    return jobs.provider_choices(get_services().settings.providers)
