"""PDF to text with pypdf: the pages' text, within the page and decompression limits."""

from __future__ import annotations

import io

import pypdf
from pypdf.errors import LimitReachedError

from providers.base import DocumentError
from providers.documents.limits import DocumentLimits, size


def pdf_text(data: bytes, limits: DocumentLimits) -> tuple[str, int, int]:
    """The text of the first MAX_PAGES_PROCESSED pages, page count, and pages read.

    Each stream may inflate to MAX_COMPRESSION_RATIO times the file's size, and at most to
    MAX_INFLATED_BYTES (pypdf's own limits, set from ours). DocumentError for a PDF over
    MAX_PDF_PAGES pages, encrypted with a password, or one that cannot be read.
    """
    inflate = min(limits.max_inflated_bytes, limits.max_compression_ratio * len(data))
    try:
        with pypdf.apply_configuration(
            zlib_maximum_output_length=inflate,
            lzw_maximum_output_length=inflate,
            run_length_maximum_output_length=inflate,
            array_based_stream_maximum_output_length=inflate,
            stream_decoding_work_maximum_length=inflate,
            maximum_declared_stream_length=inflate,
        ):
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError("The PDF document is encrypted with a password.")
            pages = len(reader.pages)
            if pages > limits.max_pages:
                raise DocumentError(
                    f"The PDF document has {pages} pages: more than MAX_PDF_PAGES={limits.max_pages}."
                )
            processed = min(pages, limits.max_pages_processed)
            texts = [reader.pages[i].extract_text() or "" for i in range(processed)]
    except LimitReachedError as exc:
        raise DocumentError(
            f"The PDF document inflates beyond its limit ({size(inflate)}: MAX_COMPRESSION_RATIO="
            f"{limits.max_compression_ratio} times its size, at most MAX_INFLATED_BYTES="
            f"{size(limits.max_inflated_bytes)}): {exc}"
        ) from None
    except DocumentError:
        raise
    except MemoryError:
        raise  # the sandbox reports it, naming EXTRACTION_MEMORY_MB
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise DocumentError(
            f"The PDF document cannot be read: {type(exc).__name__}: {exc}"
        ) from None
    return "\n\n".join(texts), pages, processed
