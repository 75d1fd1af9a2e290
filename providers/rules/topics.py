"""What a text is about: its category, its keywords, and a fallback guess of its language."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from stop_words import get_stop_words

from providers.rules.lexicon import LANGUAGES, LETTER_WORDS


def _stems(text: str) -> tuple[str, ...]:
    """The whitespace-separated stems of `text`."""
    return tuple(text.split())


_STOP_WORD_LISTS = {"en": "english", "de": "german", "fr": "french", "es": "spanish"}
# Stems that point to a category, in the four languages; a stem matches the start of a word.
# Cancellation is the strongest signal: a cancellation mail often talks of invoices too.
CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "cancellation": (
        2.0,
        _stems(
            """
        cancel terminat unsubscrib kündig gekündigt kündung abbestell abmeld vertragsende
        résili resili annul désabonn desabonn cancela baja rescind darme anular
        """
        ),
    ),
    "billing": (
        1.0,
        _stems(
            """
        invoice billing bill charge payment paid refund overcharg receipt overdue reminder
        debit credit vat price amount
        rechnung zahlung bezahl gutschrift erstattung lastschrift mahnung abbuchung betrag
        überweis rückerstatt
        factur paiement payé rembours prélèvement montant relance avoir
        factura pago pagad cobro reembols importe cargo recibo adeudo abono
        """
        ),
    ),
    "technical": (
        1.0,
        _stems(
            """
        error bug crash outage broken fail not-working install update server login-fail timeout
        fehler störung absturz ausfall funktioniert defekt problem server
        erreur panne bug plantage dysfonction fonctionne marche
        fallo avería averia funciona caída caida problema servidor
        """
        ),
    ),
    "sales": (
        1.0,
        _stems(
            """
        quote quotation offer pricing demo trial purchase upgrade licen discount proposal
        angebot kostenvoranschlag preis rabatt lizenz testversion kaufen erwerb
        devis offre tarif remise démonstration achat
        presupuesto oferta cotizaci precio descuento demostración compra comprar
        """
        ),
    ),
    "account": (
        1.0,
        _stems(
            """
        password account login username profile address e-mail-address two-factor locked
        passwort kennwort konto zugang benutzer profil adresse anmeldedaten einloggen gesperrt
        mot-de-passe compte identifiant connexion profil adresse bloqué
        contraseña cuenta usuario perfil dirección acceso bloquead
        """
        ),
    ),
}
_PART = re.compile(r"[^\W\d_]+")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")


@cache
def stop_words(language: str) -> frozenset[str]:
    """The stop words of `language` (one of LANGUAGES)."""
    return frozenset(get_stop_words(_STOP_WORD_LISTS[language]))


def words(text: str) -> list[str]:
    """The lowercased words of `text`."""
    return [w.lower() for w in _WORD.findall(text)]


def guess_language(text: str) -> str:
    """The language among LANGUAGES with the most stop words in the text (English on a tie)."""
    counts = Counter(words(text[:20_000]))
    scores = {
        lang: sum(n for w, n in counts.items() if w in stop_words(lang)) for lang in LANGUAGES
    }
    return max(LANGUAGES, key=lambda lang: scores[lang])


def category(text: str) -> str:
    """The category whose stems weigh most in the text, or "other" when none appears.

    A stem counts once per word it begins; a stem with a hyphen ("mot-de-passe") is a phrase,
    counted written with hyphens or spaces.
    """
    lowered = text.lower()
    # Word parts: "counter-offer" holds an offer, "d'erreur" an error.
    counts = Counter(_PART.findall(lowered))
    scores: dict[str, float] = {}
    for name, (weight, stems) in CATEGORIES.items():
        single = tuple(s for s in stems if "-" not in s)
        hits = sum(n for word, n in counts.items() if word.startswith(single))
        for phrase in (s for s in stems if "-" in s):
            hits += lowered.count(phrase) + lowered.count(phrase.replace("-", " "))
        scores[name] = weight * hits
    best = max(scores, key=lambda name: scores[name])
    return best if scores[best] else "other"


def keywords(text: str, language: str, limit: int = 8) -> list[str]:
    """The most frequent words that are no stop word, longest first on a tie (at most `limit`)."""
    stop = stop_words(language) | stop_words("en") | LETTER_WORDS
    counts = Counter(w for w in words(text) if len(w) > 3 and w not in stop)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], -len(item[0]), item[0]))
    return [word for word, _ in ranked[:limit]]
