"""OpenAPI post-processing: the error answers any operation can give, declared where its view did not."""

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_COMMON = {
    "401": "Not authenticated.",
    "415": "The body's Content-Type is not one this operation reads (`unsupported_media_type`).",
    "400": "A query parameter is not valid (`invalid`, `errors` names it).",
    "403": "A write by a browser session without its CSRF token (`permission_denied`); token clients never get it.",
    "406": "The Accept header asks for a type this operation cannot give (`not_acceptable`).",
}
_UNSAFE = {"post", "put", "patch", "delete"}


def declare_common_errors(result: dict, generator, request, public: bool) -> dict:
    """401 on every operation that needs a login, 415 on every operation that reads a body (DRF answers both
    before the view runs, so no view declares them itself), 400 on every paginated list (a bad `limit` or
    `offset`, refused by the paginator), 403 on every write a browser session may make (CSRF) and 406 on every
    operation that negotiates its content type (before the view too; a download answers any Accept)."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            security = operation.get("security")
            if security and {} not in security:
                responses.setdefault("401", {"description": _COMMON["401"], "content": _ERROR})
            if "requestBody" in operation:
                responses.setdefault("415", {"description": _COMMON["415"], "content": _ERROR})
            if any(parameter.get("name") == "offset" for parameter in operation.get("parameters", [])):
                responses.setdefault("400", {"description": _COMMON["400"], "content": _ERROR})
            if method in _UNSAFE and {"cookieAuth": []} in (security or []):
                responses.setdefault("403", {"description": _COMMON["403"], "content": _ERROR})
            if not any("*/*" in response.get("content", {}) for response in responses.values()):  # downloads
                responses.setdefault("406", {"description": _COMMON["406"], "content": _ERROR})
    return result
