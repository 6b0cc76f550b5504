"""What a task's video shows, derived from its submit request.

- **Length**: what the request asked for (the Gemini API's ``durationSeconds``), else by
  model family, as the gateway's models produce it (docs/upstreams.md): ``veo3*`` (Veo 3
  and 3.1) 8 s, ``veo2*`` 5 s, any other model 8 s.
- **Audio**: an AAC tone for the Veo 3 family (``veo3*``, ``veo-3*``) only.
- **Size**: 16:9 (the default) is 320x180, 9:16 is 180x320: the 1280x720 / 720x1280 shape
  at a quarter of the size. ``enable_upsample: true`` (or ``resolution: 1080p``) makes it
  480x270 / 270x480, the 1080p shape at the same quarter.
- **Images**: by the roles the request named (the Gemini API's ``image``, ``lastFrame``,
  ``referenceImages``); else for a ``*components*`` model every image is an element shown
  side by side, otherwise ``images[0]`` is the first frame, ``images[1]`` the last frame
  and any further ones elements. A URL is not fetched: its placeholder names the host.
- **Seed** picks the background colour (the prompt's CRC32 without one), so the same seed
  makes the same picture; the title line names model, ratio, upsample and seed.
"""

import zlib

from simulator.directives import strip_directives
from simulator.images import InputImage
from simulator.submit import SubmitRequest
from simulator.video import Picture, RenderSpec

SIZES = {
    ("16:9", False): (320, 180),
    ("9:16", False): (180, 320),
    ("16:9", True): (480, 270),
    ("9:16", True): (270, 480),
}
VEO3_SECONDS = 8.0
VEO2_SECONDS = 5.0
OTHER_SECONDS = 8.0


def model_seconds(model: str) -> float:
    """The fixed length, in seconds, of a video of ``model``."""
    name = model.lower()
    if name.startswith("veo2"):
        return VEO2_SECONDS
    if name.startswith("veo3"):
        return VEO3_SECONDS
    return OTHER_SECONDS


def model_has_audio(model: str) -> bool:
    """Whether ``model`` produces a sound track (the Veo 3 family does)."""
    return model.lower().startswith(("veo3", "veo-3"))


def render_spec(request: SubmitRequest) -> RenderSpec:
    """The video ``request`` asks for, as the simulator draws it."""
    ratio = request.aspect_ratio or "16:9"
    width, height = SIZES[(ratio, request.enable_upsample)]
    pictures = tuple(_picture(image) for image in request.images)
    if request.roles:
        roles = dict(zip(request.roles, pictures, strict=False))
        first, last = roles.get("first"), roles.get("last")
        elements = tuple(p for r, p in zip(request.roles, pictures, strict=False) if r == "element")
    elif "components" in request.model.lower():
        first, last, elements = None, None, pictures
    else:
        first = pictures[0] if pictures else None
        last = pictures[1] if len(pictures) > 1 else None
        elements = pictures[2:]
    seed = request.seed
    title = " · ".join(
        part
        for part in (
            request.model,
            ratio,
            "upsampled" if request.enable_upsample else "",
            f"{request.seconds:g} s" if request.seconds is not None else "",
            f"seed {seed}" if seed is not None else "",
        )
        if part
    )
    return RenderSpec(
        width=width,
        height=height,
        seconds=request.seconds or model_seconds(request.model),
        audio=model_has_audio(request.model),
        title=title,
        text=strip_directives(request.prompt),
        seed=seed if seed is not None else zlib.crc32(request.prompt.encode()),
        first=first,
        last=last,
        elements=elements,
    )


def _picture(image: InputImage) -> Picture:
    return Picture(data=image.data, label=image.label)
