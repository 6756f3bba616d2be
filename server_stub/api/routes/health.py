from fastapi import APIRouter

from server_stub import __version__

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health() -> dict[str, str]:
    """Liveness; no authentication, no data."""
    return {"status": "ok", "version": __version__}
