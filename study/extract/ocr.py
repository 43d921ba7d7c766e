"""OCR of images with Tesseract (pytesseract), in the languages of settings.OCR_LANGUAGES that are installed."""

import io
import logging

import pytesseract
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from .base import ExtractionFailed, ExtractionSkipped, ExtractResult, clean_text

logger = logging.getLogger(__name__)


def _configure() -> None:
    # pytesseract keeps the binary path in a module global; settings may change it (tests, deploys).
    pytesseract.pytesseract.tesseract_cmd = settings.TESSERACT_CMD or "tesseract"


def ocr_languages() -> str:
    """The configured languages that Tesseract has data for, joined with '+'.

    Raises ExtractionSkipped when Tesseract is missing or has none of them.
    """
    _configure()
    try:
        pytesseract.get_tesseract_version()
        installed = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise ExtractionSkipped(f"OCR unavailable: tesseract not found ({settings.TESSERACT_CMD})") from exc
    wanted = [lang for lang in settings.OCR_LANGUAGES.split("+") if lang]
    usable = [lang for lang in wanted if lang in installed]
    if not usable:
        raise ExtractionSkipped(f"OCR unavailable: no language data for {settings.OCR_LANGUAGES}")
    if len(usable) < len(wanted):
        logger.warning("OCR languages missing: %s", sorted(set(wanted) - set(usable)))
    return "+".join(usable)


def _on_white(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white: handwriting snapshots are dark strokes on a transparent canvas."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    return image.convert("L")


def extract_image(data: bytes) -> ExtractResult:
    languages = ocr_languages()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            prepared = _on_white(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ExtractionFailed(f"unreadable image: {exc}") from exc
    try:
        text = pytesseract.image_to_string(prepared, lang=languages, timeout=settings.OCR_TIMEOUT_SECONDS)
    except RuntimeError as exc:  # pytesseract's timeout
        raise ExtractionFailed(f"OCR failed: {exc}") from exc
    except pytesseract.TesseractError as exc:
        raise ExtractionFailed(f"OCR failed: {exc.message or exc}") from exc
    return ExtractResult(text=clean_text(text), backend=f"tesseract:{languages}")
