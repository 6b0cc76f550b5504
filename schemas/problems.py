"""Stable problem codes (RFC 9457 ``code`` member) and the HTTP status of each."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    INVALID_JSON = "invalid_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    VALIDATION_ERROR = "validation_error"
    INVALID_PROMPT = "invalid_prompt"
    UNKNOWN_MODEL = "unknown_model"
    IMAGES_NOT_SUPPORTED = "images_not_supported"
    TOO_MANY_IMAGES = "too_many_images"
    UNSUPPORTED_PARAMETER = "unsupported_parameter"
    INVALID_IMAGE = "invalid_image"
    IMAGE_TOO_LARGE = "image_too_large"
    INVALID_METADATA = "invalid_metadata"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_GRANT = "invalid_grant"
    URL_NOT_ALLOWED = "url_not_allowed"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    TOO_MANY_CONCURRENT_TASKS = "too_many_concurrent_tasks"
    SERVICE_DISABLED = "service_disabled"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    UPLOAD_NOT_FOUND = "upload_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_request_in_progress"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    VIDEO_NOT_READY = "video_not_ready"
    VIDEO_FINISHED = "video_already_finished"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"
    # Limits (README, "Limits"): a rate refused with Retry-After; a body too slow to arrive.
    RATE_LIMITED = "rate_limited"
    REQUEST_TIMEOUT = "request_timeout"


STATUS: dict[Code, int] = {
    Code.INVALID_JSON: 400,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.BODY_TOO_LARGE: 413,
    Code.VALIDATION_ERROR: 400,
    Code.INVALID_PROMPT: 400,
    Code.UNKNOWN_MODEL: 400,
    Code.IMAGES_NOT_SUPPORTED: 400,
    Code.TOO_MANY_IMAGES: 400,
    Code.UNSUPPORTED_PARAMETER: 400,
    Code.INVALID_IMAGE: 400,
    Code.IMAGE_TOO_LARGE: 413,
    Code.INVALID_METADATA: 400,
    Code.INVALID_CURSOR: 400,
    Code.INVALID_GRANT: 400,
    Code.URL_NOT_ALLOWED: 400,
    Code.INSUFFICIENT_CREDITS: 402,
    Code.TOO_MANY_CONCURRENT_TASKS: 429,
    Code.SERVICE_DISABLED: 503,
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.UPLOAD_NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.IDEMPOTENCY_KEY_REUSED: 422,
    Code.IDEMPOTENCY_IN_PROGRESS: 409,
    Code.INVALID_IDEMPOTENCY_KEY: 400,
    Code.VIDEO_NOT_READY: 409,
    Code.VIDEO_FINISHED: 409,
    Code.UNAVAILABLE: 503,
    Code.INTERNAL_ERROR: 500,
    Code.RATE_LIMITED: 429,
    Code.REQUEST_TIMEOUT: 408,
}

TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FailureCode(StrEnum):
    """Why a task ended in ``failed`` (the video object's ``error.code``)."""

    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_REJECTED = "upstream_rejected"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_SUBMIT_AMBIGUOUS = "upstream_submit_ambiguous"
    UPSTREAM_TASK_LOST = "upstream_task_lost"
    UPSTREAM_NO_VIDEO = "upstream_no_video"
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_QUOTA = "upstream_quota"
    SAFETY_FILTERED = "safety_filtered"
    DOWNLOAD_FAILED = "download_failed"
    INVALID_VIDEO = "invalid_video"
    VIDEO_TOO_LARGE = "video_too_large"
    INPUT_UNAVAILABLE = "input_unavailable"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
