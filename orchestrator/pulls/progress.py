"""Fold the Docker daemon's pull event stream into one honest progress figure.

The daemon streams one JSON object per event. Two shapes exist:

* the classic (graphdriver) shape: every layer is first announced ("Pulling fs
  layer" or "Already exists"), then goes Waiting -> Downloading (with
  ``progressDetail.current/total``) -> Verifying Checksum -> Download complete ->
  Extracting (current/total again, in bytes of the compressed blob) -> Pull
  complete;
* the containerd image store shape (Docker 24+ with the containerd snapshotter):
  the same statuses, but ``progressDetail`` may carry ``hidecounts`` and no
  sizes, "Extracting" may have no counts, and "Exists"/"Already exists" mark
  layers the store has.

A layer's size is known only once it starts downloading, so the percentage is
``None`` until every layer that must be downloaded has reported its size; until
then the caller shows "k of N layers". Download and extraction each count for
half of a layer's weight, so 100 means every layer is in place, not merely
downloaded. The figure never goes down, even when the daemon retries a layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Statuses after which a layer is fully downloaded / fully in place.
_DOWNLOADED = {"verifying checksum", "download complete", "extracting", "pull complete", "already exists", "exists"}
_DONE = {"pull complete", "already exists", "exists"}
# Statuses that only announce a layer; the announcement phase ends with the first other one.
_ANNOUNCE = {"pulling fs layer", "already exists", "exists", "waiting"}


@dataclass
class LayerState:
    id: str
    status: str = ""
    total: int | None = None
    downloaded: int = 0
    extracted: int = 0
    present: bool = False  # the daemon already had it: nothing to download

    @property
    def done(self) -> bool:
        return self.status.lower() in _DONE

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "current": self.extracted if self.status.lower() == "extracting" else self.downloaded,
            "total": self.total,
        }


@dataclass
class Snapshot:
    """What a job row shows; the field names are the pull job JSON's."""

    progress: int | None
    bytes_done: int
    bytes_total: int | None
    layers_done: int
    layers_total: int | None
    layers: list[dict]
    message: str
    digest: str | None


@dataclass
class ProgressFolder:
    layers: dict[str, LayerState] = field(default_factory=dict)
    message: str = ""
    digest: str | None = None
    up_to_date: bool = False
    _announcing_done: bool = False
    _best_progress: int | None = None

    def feed(self, event: dict) -> None:
        """Fold one decoded event. Error events are the caller's business."""
        status = str(event.get("status") or "")
        layer_id = event.get("id")
        detail = event.get("progressDetail") or {}
        if not layer_id or status.startswith("Pulling from") or not self._is_layer_event(status):
            self._fold_message(status)
            return
        layer = self.layers.get(layer_id)
        if layer is None:
            layer = self.layers[layer_id] = LayerState(id=layer_id)
        lowered = status.lower()
        if lowered not in _ANNOUNCE:
            self._announcing_done = True
        layer.status = status
        current, total = detail.get("current"), detail.get("total")
        if lowered in {"already exists", "exists"}:
            layer.present = True
        elif lowered == "downloading":
            if isinstance(total, int) and total > 0:
                layer.total = total
            if isinstance(current, int):
                # A retried layer restarts at 0; keep the best so the bar never moves back.
                layer.downloaded = max(layer.downloaded, current)
        elif lowered == "extracting":
            if isinstance(total, int) and total > 0 and layer.total is None:
                layer.total = total
            if isinstance(current, int):
                layer.extracted = max(layer.extracted, current)
        if lowered in _DOWNLOADED and layer.total is not None:
            layer.downloaded = layer.total
        if layer.done and layer.total is not None:
            layer.extracted = layer.total
        self.message = f"{layer_id}: {status}"

    @staticmethod
    def _is_layer_event(status: str) -> bool:
        # "Digest: ...", "Status: ..." and the initial "Pulling from" have no layer meaning.
        return not (status.startswith("Digest:") or status.startswith("Status:"))

    def _fold_message(self, status: str) -> None:
        if status.startswith("Digest:"):
            self.digest = status.split(":", 1)[1].strip()
        if "Image is up to date" in status:
            self.up_to_date = True
        if status:
            self.message = status

    def finish(self) -> None:
        """The stream ended without an error: every layer is in place."""
        for layer in self.layers.values():
            if not layer.done:
                layer.status = "Pull complete"
                if layer.total is not None:
                    layer.downloaded = layer.extracted = layer.total
        self._announcing_done = True
        self._best_progress = 100

    def snapshot(self) -> Snapshot:
        to_fetch = [layer for layer in self.layers.values() if not layer.present]
        sizes_known = self._announcing_done and all(layer.total is not None for layer in to_fetch)
        bytes_done = sum(min(layer.downloaded, layer.total or layer.downloaded) for layer in to_fetch)
        bytes_total = sum(layer.total or 0 for layer in to_fetch) if sizes_known else None
        progress: int | None = None
        if self._best_progress == 100:
            progress = 100
        elif sizes_known and self.layers:
            weight = 2 * (bytes_total or 0)
            if weight == 0:
                # Nothing to download (every layer present): progress is how many layers are done.
                ratio = sum(layer.done for layer in self.layers.values()) / len(self.layers)
            else:
                moved = sum(
                    min(lay.downloaded, lay.total or 0) + min(lay.extracted, lay.total or 0) for lay in to_fetch
                )
                ratio = moved / weight
            # 99 at most until the stream ends: 100 means the daemon said it is finished.
            progress = min(99, int(ratio * 100))
            if self._best_progress is not None:
                progress = max(progress, self._best_progress)
        if progress is None:
            # A layer announced late hides its size again; keep the figure already shown.
            progress = self._best_progress
        self._best_progress = progress
        return Snapshot(
            progress=progress,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            layers_done=sum(layer.done for layer in self.layers.values()),
            layers_total=len(self.layers) if self._announcing_done else None,
            layers=[layer.as_json() for layer in self.layers.values()],
            message=self.message[:500],
            digest=self.digest,
        )
