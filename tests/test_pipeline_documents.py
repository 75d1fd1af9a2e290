"""A text job through the real (rule-based) analyzer and enricher, on a live worker."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.services import get_services
from tests.factories import make_job
from tests.support import wait_for_job

MAIL = """From: Lucía Fernández <lucia.fernandez@ejemplo.es>

Hola,

quiero darme de baja del servicio. Mi número de cliente es CL-20931 y la última factura,
del 1 de junio de 2024, fue de 49,90 €. Pueden llamarme al 612 345 678.

Un saludo,
Lucía Fernández
"""


@pytest.fixture
def real_app(make_app: Any) -> Any:
    return make_app(analyzer_provider="default", enricher_provider="default")


def test_a_text_job_through_the_real_providers_completes_with_the_documented_structure(
    real_app, worker_for
):
    # Given a worker of an app whose analysis and enrichment are the rule-based providers
    worker_for(real_app)
    with get_services(real_app).database.session() as session:
        job = make_job(session, document_content=MAIL)
    assert get_services(real_app).pipeline.dispatch(job.id)

    # When the job runs through the three stages
    done = wait_for_job(real_app, job.id, "completed")

    # Then the analysis lists typed entities, a category and keywords
    results: dict[str, Any] = {run.name: run.result for run in done.runs}
    analysis = results["analysis"]
    assert analysis["language"] == "es" and analysis["category"] == "cancellation"
    found = {(e["type"], e["text"]) for e in analysis["entities"]}
    assert found == {
        ("PERSON", "Lucía Fernández"),
        ("EMAIL", "lucia.fernandez@ejemplo.es"),
        ("IDENTIFIER", "CL-20931"),
        ("DATE", "1 de junio de 2024"),
        ("MONEY", "49,90 €"),
        ("PHONE", "612 345 678"),
    }
    text = results["extraction"]["text"]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in analysis["entities"])
    # and the enrichment, which reads the extracted text too, normalises and redacts it
    enrichment = results["enrichment"]
    assert enrichment["normalized"]["phones"] == [
        {"text": "612 345 678", "e164": "+34612345678", "region": "ES", "valid": True}
    ]
    assert enrichment["normalized"]["dates"] == [
        {"text": "1 de junio de 2024", "iso": "2024-06-01"}
    ]
    assert enrichment["normalized"]["amounts"] == [
        {"text": "49,90 €", "value": "49.90", "currency": "EUR"}
    ]
    assert enrichment["pii"]["person"] and enrichment["pii"]["phone"]
    redacted = enrichment["redacted_text"]
    assert "From: [PERSON] <[EMAIL]>" in redacted and "llamarme al [PHONE]" in redacted
    assert "Lucía" not in redacted and "baja" in enrichment["summary"]
    assert enrichment["reading_time_seconds"] > 0
