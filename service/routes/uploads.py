"""/v1/uploads: upload an image to use on later creates, read it, delete it."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import uploads
from core.images import MAX_IMAGE_BYTES, ImageError
from core.repo.uploads import Upload as UploadRow
from schemas.api import Upload, UploadDeleted, UploadForm, UploadPath
from schemas.clock import unix
from schemas.problems import Code
from service import params
from service.auth import authenticate
from service.body import limited, media_type
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import ProblemError

# The image and its multipart framing (boundaries, part headers): the body is cut as it
# streams past this, so nothing much beyond 10 MB is ever read.
BODY_LIMIT = MAX_IMAGE_BYTES + 64 * 1024
FIELD = "file"


def upload_of(row: UploadRow) -> Upload:
    return Upload.model_validate(
        {
            "id": row.id,
            "bytes": row.size,
            "mime_type": row.mime_type,
            "width": row.width,
            "height": row.height,
            "created_at": unix(row.created_at),
            "expires_at": unix(row.expires_at),
        }
    )


async def create(request: Request) -> Response:
    principal = await authenticate(request)
    context = ctx(request)
    if media_type(request) != "multipart/form-data":
        raise ProblemError(
            Code.UNSUPPORTED_MEDIA_TYPE, f"Send multipart/form-data with one '{FIELD}' part."
        )
    data = await _file(request)
    try:
        facts, sha256 = await uploads.inspect(data)
    except ImageError as exc:
        code = Code.IMAGE_TOO_LARGE if exc.too_large else Code.INVALID_IMAGE
        raise ProblemError(code, str(exc)) from None
    row = await uploads.store(
        context.engine,
        context.storage,
        client_id=principal.client_id,
        data=data,
        facts=facts,
        sha256=sha256,
        ttl_seconds=context.settings.upload_ttl_seconds,
    )
    return JSONResponse(upload_of(row).model_dump(mode="json"), status_code=201)


async def _file(request: Request) -> bytes:
    """The bytes of the one file part, at most ``MAX_IMAGE_BYTES`` + 1 of them (more is
    refused while the body streams)."""
    try:
        async with limited(request, BODY_LIMIT).form(
            max_files=1, max_fields=4, max_part_size=1024
        ) as form:
            items = form.multi_items()
            if [name for name, _ in items] != [FIELD] or not isinstance(items[0][1], UploadFile):
                raise ProblemError(
                    Code.VALIDATION_ERROR,
                    f"Send exactly one part, '{FIELD}', a file (with a filename); got"
                    f" {', '.join(repr(name) for name, _ in items) or 'none'}.",
                )
            return await items[0][1].read(MAX_IMAGE_BYTES + 1)
    except ProblemError as exc:
        if exc.code == Code.BODY_TOO_LARGE:  # the only large part there can be is the image
            raise ProblemError(Code.IMAGE_TOO_LARGE, "The file is larger than 10 MB.") from None
        raise
    except (ValueError, KeyError, MultiPartException) as exc:
        raise ProblemError(Code.VALIDATION_ERROR, f"Malformed multipart body: {exc}") from None
    except HTTPException as exc:  # Starlette's wording of a MultiPartException
        raise ProblemError(
            Code.VALIDATION_ERROR, f"Malformed multipart body: {exc.detail}"
        ) from None


async def _owned(request: Request) -> tuple[str, str]:
    """(client id, upload id) of a request on one upload; a malformed id is a 404."""
    principal = await authenticate(request)
    upload_id = params.path(UploadPath, request, not_found="No such upload.").upload_id
    return principal.client_id, upload_id


async def retrieve(request: Request) -> Response:
    client_id, upload_id = await _owned(request)
    row = await uploads.find(ctx(request).engine, upload_id, client_id=client_id)
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such upload.")
    return JSONResponse(upload_of(row).model_dump(mode="json"))


async def delete(request: Request) -> Response:
    client_id, upload_id = await _owned(request)
    context = ctx(request)
    if not await uploads.discard(context.engine, context.storage, upload_id, client_id=client_id):
        raise ProblemError(Code.NOT_FOUND, "No such upload.")
    return JSONResponse(UploadDeleted(id=upload_id).model_dump(mode="json"))


operations = [
    Operation(
        "POST",
        "/v1/uploads",
        create,
        "Upload an image (multipart/form-data, one 'file' part) to use in later creates",
        "uploads",
        (Reply(201, "The upload object.", Upload, id_of="upload_id"),),
        form=UploadForm,
        problems=(Code.INVALID_IMAGE, Code.IMAGE_TOO_LARGE),
    ),
    Operation(
        "GET",
        "/v1/uploads/{upload_id}",
        retrieve,
        "Retrieve one of the client's uploads (until it expires)",
        "uploads",
        (Reply(200, "The upload object.", Upload),),
        path_params=UploadPath,
    ),
    Operation(
        "DELETE",
        "/v1/uploads/{upload_id}",
        delete,
        "Delete an upload (videos already created from it keep their copy)",
        "uploads",
        (Reply(200, "The upload is deleted.", UploadDeleted),),
        path_params=UploadPath,
    ),
]
