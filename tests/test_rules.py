"""The offline rules, one family at a time, in English, German, French and Spanish."""

from __future__ import annotations

import pytest

from providers.rules.contacts import find_emails, find_phones, find_urls, phone_number
from providers.rules.dates import find_dates, iso_date
from providers.rules.digest import reading_time_seconds, redact, sentences, summary
from providers.rules.money import amount, find_amounts
from providers.rules.people import find_people
from providers.rules.references import find_ibans, find_identifiers, iban_valid
from providers.rules.spans import Span, resolve
from providers.rules.topics import category, guess_language, keywords


def texts(text: str, spans) -> list[str]:
    return [text[s.start : s.end] for s in resolve(spans)]


@pytest.mark.parametrize(
    ("language", "text", "found", "iso"),
    [
        ("de", "Kündigung zum 20. März 2024 bitte", "20. März 2024", "2024-03-20"),
        ("fr", "résiliation au 12 avril 2024.", "12 avril 2024", "2024-04-12"),
        ("es", "baja desde el 1 de junio de 2024.", "1 de junio de 2024", "2024-06-01"),
        ("en", "paid on 02/16/2024 by card", "02/16/2024", "2024-02-16"),
        ("en", "due March 3rd, 2024 at noon", "March 3rd, 2024", "2024-03-03"),
        ("de", "fällig am 03.04.2024.", "03.04.2024", "2024-04-03"),
        ("en", "due 03/04/2024.", "03/04/2024", "2024-03-04"),
        ("fr", "le 1er mai 2024", "1er mai 2024", "2024-05-01"),
        ("en", "logged 2024-11-05 at 10:00", "2024-11-05", "2024-11-05"),
        ("es", "en marzo de 2025 cerramos", "marzo de 2025", "2025-03"),
        ("en", "meeting on 03/21/2024.", "03/21/2024", "2024-03-21"),
        ("fr", "livré le 6 février.", "6 février", "--02-06"),
        ("de", "seit 3. Sept. 2024 offen", "3. Sept. 2024", "2024-09-03"),
    ],
)
def test_dates_are_found_and_written_in_iso_8601(language, text, found, iso):
    assert texts(text, find_dates(text, language)) == [found]
    assert iso_date(found, language) == iso


@pytest.mark.parametrize(
    "text", ["version 1.2.3", "31.02.2024", "13/14/2024", "you may 2 things", "page 12 of 30"]
)
def test_numbers_that_are_no_date_are_not_dates(text):
    assert texts(text, find_dates(text, "en")) == []


@pytest.mark.parametrize(
    ("language", "text", "found", "value", "currency"),
    [
        ("de", "Gesamt: 1.249,90 EUR inkl. MwSt.", "1.249,90 EUR", "1249.90", "EUR"),
        ("en", "You were charged $1,188.00 twice.", "$1,188.00", "1188.00", "USD"),
        ("fr", "montant de 249,90 € TTC", "249,90 €", "249.90", "EUR"),
        ("fr", "un total de 1 249,90 € en mai", "1 249,90 €", "1249.90", "EUR"),
        ("es", "un cargo de 1\u00a0249,90 € en mayo", "1\u00a0249,90 €", "1249.90", "EUR"),
        ("en", "a fee of GBP 45 applies", "GBP 45", "45.00", "GBP"),
        ("de", "nur 12,- Euro im Monat", "12,- Euro", "12.00", "EUR"),
        ("de", "CHF 1'200.50 offen", "CHF 1'200.50", "1200.50", "CHF"),
        ("es", "unos 30 euros más", "30 euros", "30.00", "EUR"),
        ("de", "Menge 1 780,00 € gesamt", "780,00 €", "780.00", "EUR"),
        ("es", "Total104,49 €", "104,49 €", "104.49", "EUR"),
    ],
)
def test_amounts_get_a_decimal_value_and_an_iso_4217_currency(
    language, text, found, value, currency
):
    assert texts(text, find_amounts(text, language)) == [found]
    assert amount(found) == (value, currency)


def test_numbers_without_a_currency_are_no_amounts():
    text = "We sold 1,188 units in 2024"
    assert texts(text, find_amounts(text, "en")) == []


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("Hi, I want to cancel. SubscriptionID 2342", [("2342", "SubscriptionID")]),
        ("Rechnung INV-2024-0042 ist offen", [("INV-2024-0042", "Rechnung")]),
        ("Kundennummer K-448210, bitte", [("K-448210", "Kundennummer")]),
        ("votre numéro de commande : 88812.", [("88812", "commande")]),
        ("número de pedido: PED-7781", [("PED-7781", "pedido")]),
        ("see ticket #48213 please", [("48213", "ticket")]),
        ("Invoice no.: 2024-17 is due", [("2024-17", "Invoice")]),
        ("quoting TCK-5521 in the subject", [("TCK-5521", None)]),
        ("My SubscriptionID is 2342.", [("2342", "SubscriptionID")]),
        ("Mon numéro de client est le 5510293.", [("5510293", "client")]),
        ("**Vertragsnummer:** 30078815", [("30078815", "Vertragsnummer")]),
        ("Schadennummer: SN 2024/08815", [("SN 2024/08815", "Schadennummer")]),
        ("avis de situation : numéro fiscal 1234567890123", [("1234567890123", "numéro fiscal")]),
        ("en el vuelo AS1234 de Madrid", [("AS1234", "vuelo")]),
        ("CUPS: ES0021000012345678AB", [("ES0021000012345678AB", None)]),
        ("tu pedido n.o 2024-88123 del 19", [("2024-88123", "pedido")]),
        ("Utilisez le code PRINTEMPS24 lors de votre achat", [("PRINTEMPS24", "code")]),
    ],
)
def test_reference_numbers_are_found_after_their_label_or_by_their_shape(text, codes):
    spans = resolve(find_identifiers(text))
    assert [(text[s.start : s.end], s.label) for s in spans] == codes


def test_words_and_short_numbers_after_a_label_are_no_identifiers():
    text = "Your order of 3 items and the invoice for March are ready."
    assert texts(text, find_identifiers(text)) == []


def test_ibans_pass_the_mod_97_check_and_stop_at_the_next_word():
    text = "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX; ES91 2100 0418 4502 0005 1332."
    assert texts(text, find_ibans(text)) == [
        "DE89 3704 0044 0532 0130 00",
        "ES91 2100 0418 4502 0005 1332",
    ]
    assert iban_valid("FR1420041010050500013M02606")
    assert not iban_valid("DE89370400440532013001")  # one digit off
    assert texts("DE00 1234 5678 9012 3456 78", find_ibans("DE00 1234 5678 9012 3456 78")) == []


def test_emails_are_checked_for_syntax_and_urls_lose_trailing_punctuation():
    text = "Write to anna.weber@beispiel.de, not to bad@@x or see https://example.com/help."
    assert texts(text, find_emails(text)) == ["anna.weber@beispiel.de"]
    assert texts(text, find_urls(text)) == ["https://example.com/help"]
    assert texts("www.acme.es/es/ayuda)", find_urls("www.acme.es/es/ayuda)")) == [
        "www.acme.es/es/ayuda"
    ]


@pytest.mark.parametrize(
    ("language", "text", "found", "e164", "region"),
    [
        ("de", "Tel. 030 12345678 tagsüber", "030 12345678", "+493012345678", "DE"),
        ("fr", "portable : 06 12 34 56 78", "06 12 34 56 78", "+33612345678", "FR"),
        ("es", "móvil 612 345 678", "612 345 678", "+34612345678", "ES"),
        ("en", "call (415) 555-0132 today", "(415) 555-0132", "+14155550132", "US"),
        ("en", "office +44 20 7946 0958.", "+44 20 7946 0958", "+442079460958", "GB"),
    ],
)
def test_phones_are_found_per_language_and_written_in_e164(language, text, found, e164, region):
    assert texts(text, find_phones(text, language)) == [found]
    assert phone_number(found, language) == {"e164": e164, "region": region, "valid": True}


def test_a_labelled_reference_with_separators_is_no_phone_but_an_announced_number_is():
    text = "Rechnung Nr. 2024-1187 vom Januar; Telefonnummer: 030 1234567"
    found = resolve([*find_identifiers(text), *find_phones(text, "de")])
    assert [(s.type, text[s.start : s.end]) for s in found] == [
        ("IDENTIFIER", "2024-1187"),
        ("PHONE", "030 1234567"),
    ]


def test_a_national_number_of_a_possible_length_counts_unannounced():
    text = "Please write to me or on 07700 900461 after six."
    assert texts(text, find_phones(text, "en")) == ["07700 900461"]
    assert phone_number("07700 900461", "en") == {
        "e164": "+447700900461",
        "region": "GB",
        "valid": False,
    }


def test_a_bracket_before_a_phone_is_prose():
    text = "sur mon portable (06 98 76 54 32)."
    assert texts(text, find_phones(text, "fr")) == ["06 98 76 54 32"]


def test_digits_inside_codes_and_bare_runs_of_digits_are_no_phones():
    text = "Rechnung INV-2024-0042, Kundennummer 44821077, Betrag 1.249,90 EUR"
    assert texts(text, find_phones(text, "de")) == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Hi, my name is Gabriela, I want to cancel.", ["Gabriela"]),
        ("Sehr geehrte Frau Dr. Anna Schmidt, danke.", ["Anna Schmidt"]),
        ("Bonjour M. Jean-Pierre Dupont, merci.", ["Jean-Pierre Dupont"]),
        ("Estimada Sra. María de la Cruz: gracias.", ["María de la Cruz"]),
        ("From: Lukas Weber <lukas@example.com>", ["Lukas Weber"]),
        ("Mit freundlichen Grüßen\n\nThomas Becker\nKundenservice", ["Thomas Becker"]),
        ("Best regards, John Smith", ["John Smith"]),
        ("**Reported by:** Priya Raman (priya@x.io)", ["Priya Raman"]),
        ("1. Roll back on errors (owner: Daniel Kim).", ["Daniel Kim"]),
        (
            "Attendees: Rachel Adams, Kevin O'Brien, and Sofia Marquez from Acme.",
            ["Rachel Adams", "Kevin O'Brien", "Sofia Marquez"],
        ),
        (
            "Asistentes: Raúl Jiménez, Elena Castro y Diego Herrera.",
            ["Raúl Jiménez", "Elena Castro", "Diego Herrera"],
        ),
        ("Herrn\nMarkus Brandt\nLindenweg 4", ["Markus Brandt"]),
        ("**Kunde (Stefan Horn):** Hallo, die App stürzt ab.", ["Stefan Horn"]),
        ("Le chef de service,\nPhilippe Caron", ["Philippe Caron"]),
        ("su gestor Fernando Vidal está a su disposición", ["Fernando Vidal"]),
        ("**Abierto por:** Andrea Molina (andrea@x.es)", ["Andrea Molina"]),
        ("Atentamente,\nBanco Mediterráneo", []),
        ("Mit besten Grüßen\nFrank Wolf\nDachdeckermeister", ["Frank Wolf"]),
        ("Praxis Dr. med. Sandra Keller, Freiburg", ["Sandra Keller"]),
        ("the shop assistant, Ben, told me", ["Ben"]),
        ("From: TravelHub Bookings <bookings@travelhub.com>", []),
        ("un devis à Sandrine Lemoine, notre responsable commerciale.", ["Sandrine Lemoine"]),
        ("¡Gracias por tu pedido, Sergio!", ["Sergio"]),
        ("An: Familie Berger <berger.familie@gmx.de>", []),
        ("Dear Customer Service team, hello Team!", []),
        ("Dear Sir or Madam, Liebe Kolleginnen und Kollegen,", []),
        ("Sehr geehrte Damen und Herren, ich bin Kunde seit 2019.", []),
    ],
)
def test_people_are_found_by_their_cues_and_not_from_roles(text, names):
    assert texts(text, find_people(text)) == names


def test_every_later_mention_of_a_person_counts():
    text = "Dear Mr. Peter Brown,\nthanks. Brown is our contact; Peter agreed."
    assert texts(text, find_people(text)) == ["Peter Brown", "Brown", "Peter"]


def test_overlapping_findings_keep_the_more_trusted_type():
    spans = [Span("PHONE", 5, 20), Span("IBAN", 0, 27), Span("PERSON", 30, 35)]
    assert resolve(spans) == [Span("IBAN", 0, 27), Span("PERSON", 30, 35)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I want to cancel my subscription, the last invoice was fine.", "cancellation"),
        ("Die Rechnung vom März ist doppelt abgebucht worden.", "billing"),
        ("L'application affiche une erreur et plante au démarrage.", "technical"),
        ("Quisiera un presupuesto para 20 licencias.", "sales"),
        ("I forgot my password and cannot log into my account.", "account"),
        ("The weather was lovely at the company picnic.", "other"),
    ],
)
def test_the_category_follows_the_strongest_cues(text, expected):
    assert category(text) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Please find attached the invoice for the last month of the year.", "en"),
        ("Bitte finden Sie anbei die Rechnung für den letzten Monat des Jahres.", "de"),
        ("Veuillez trouver ci-joint la facture pour le dernier mois de l'année.", "fr"),
        ("Adjunto encontrará la factura del último mes del año.", "es"),
    ],
)
def test_the_fallback_language_guess_counts_stop_words(text, language):
    assert guess_language(text) == language


def test_keywords_are_frequent_content_words():
    text = "Invoice overdue. The invoice is overdue since March; please pay the invoice."
    assert keywords(text, "en")[:2] == ["invoice", "overdue"]


def test_redaction_replaces_contacts_accounts_and_people_only():
    text = "Anna: anna@x.de, +49 30 1234567, DE89 3704 0044 0532 0130 00, 12 EUR"
    entities = [
        {"type": "PERSON", "text": "Anna", "start": 0, "end": 4},
        {"type": "EMAIL", "text": "anna@x.de", "start": 6, "end": 15},
        {"type": "PHONE", "text": "+49 30 1234567", "start": 17, "end": 31},
        {"type": "IBAN", "text": "DE89 3704 0044 0532 0130 00", "start": 33, "end": 60},
        {"type": "MONEY", "text": "12 EUR", "start": 62, "end": 68},
        {"type": "PERSON", "text": "Bob", "start": 0, "end": 3},  # offsets do not fit: ignored
    ]
    assert redact(text, entities) == "[PERSON]: [EMAIL], [PHONE], [IBAN], 12 EUR"


def test_the_summary_picks_the_central_sentences_and_skips_greetings():
    text = (
        "Dear Sir or Madam,\n\nThe invoice INV-1 charges the annual plan twice. "
        "I paid the annual plan in January. The weather is nice. "
        "Please refund the second annual plan charge.\n\nBest regards\nAnna"
    )
    assert sentences(text)[0] == "Dear Sir or Madam,"
    result = summary(text, "en", limit=500)
    assert "annual plan" in result and "Dear" not in result and "weather" not in result
    assert len(summary(text, "en", limit=20)) == 20


def test_reading_time_counts_words_at_a_steady_pace():
    assert (reading_time_seconds(0), reading_time_seconds(1), reading_time_seconds(230)) == (
        0,
        1,
        60,
    )
