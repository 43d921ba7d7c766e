"""OCR of images with Tesseract (pytesseract), in the languages of settings.OCR_LANGUAGES that are installed."""

import io
import logging
import struct

import pytesseract
from django.conf import settings
from PIL import ExifTags, Image, ImageOps

from .base import ExtractionFailed, ExtractionSkipped, ExtractResult, clean_text

# What Pillow raises for a broken image, besides OSError (UnidentifiedImageError is one): e.g. ValueError for a
# text chunk that inflates past PngImagePlugin.MAX_TEXT_CHUNK, SyntaxError / struct.error for a broken header,
# DecompressionBombError beyond its pixel limit. The snapshot upload's check refuses the same.
BROKEN_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)

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
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Grey pasted through the alpha mask onto white: one byte per pixel per step, where compositing
        # two RGBA images held four such copies at once (the same result, ±1 of rounding).
        flattened = Image.new("L", image.size, 255)
        flattened.paste(image.convert("L"), mask=image.getchannel("A"))
        return flattened
    return image.convert("L")


def _upright(image: Image.Image) -> Image.Image:
    """The image as it is shown: a camera stores the pixels as its sensor read them and says how to turn them (EXIF
    Orientation); a phone's portrait photo was read sideways, into nonsense."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def _open(data: bytes) -> Image.Image:
    """The image with only its header read; refused when it has too many pixels to decode."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # beyond Pillow's own limit, when OCR_MAX_PIXELS is set higher
        raise ExtractionSkipped(f"image too large to OCR: {exc}") from exc
    except BROKEN_IMAGE_ERRORS as exc:
        raise ExtractionFailed(f"unreadable image: {exc}") from exc
    width, height = image.size
    limit = settings.OCR_MAX_PIXELS
    if width * height > limit:
        image.close()
        raise ExtractionSkipped(f"image too large to OCR: {width}×{height} pixels, limit {limit:,} (OCR_MAX_PIXELS)")
    return image


def extract_image(data: bytes) -> ExtractResult:
    with _open(data) as image:
        languages = ocr_languages()
        try:
            image.load()
            prepared = _on_white(_upright(image))
        except BROKEN_IMAGE_ERRORS as exc:
            raise ExtractionFailed(f"unreadable image: {exc}") from exc
    try:
        text = pytesseract.image_to_string(prepared, lang=languages, timeout=settings.OCR_TIMEOUT_SECONDS)
    except RuntimeError as exc:  # pytesseract's timeout
        raise ExtractionFailed(f"OCR failed: {exc}") from exc
    except pytesseract.TesseractError as exc:
        raise ExtractionFailed(f"OCR failed: {exc.message or exc}") from exc
    return ExtractResult(text=clean_text(text), backend=f"tesseract:{languages}")
