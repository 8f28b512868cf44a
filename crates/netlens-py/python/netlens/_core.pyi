"""Type stubs of netlens._core, the native module (see crates/netlens-py/src/lib.rs).

Images are file paths (str) or (rgb_bytes, width, height) tuples; arrays come back as
little-endian bytes (float32 maps, uint8 RGB images) with their sizes. Use the `netlens`
package's wrappers, which take and give numpy arrays.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

_Image = Union[str, Tuple[bytes, int, int]]
_Progress = Optional[Callable[[int], Any]]

DEFAULT_MODEL: str

class Model:
    def __init__(
        self,
        name: str,
        weights: Optional[str] = None,
        input_size: Optional[int] = None,
        resize: Optional[int] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        pixel_scale: Optional[float] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def resize(self) -> int: ...
    @property
    def classes(self) -> int: ...
    def layers(self) -> List[str]: ...
    def cam_layer(self) -> str: ...
    def fit_images(self, images: List[_Image]) -> List[Tuple[bytes, int, int]]: ...
    def classify(
        self, images: List[_Image], top: int = 5, batch_size: int = 8, progress: _Progress = None
    ) -> List[Dict[str, Any]]: ...
    def saliency(
        self,
        images: List[_Image],
        method: str = "vanilla",
        target: Optional[int] = None,
        batch_size: int = 8,
        options: Optional[Dict[str, Any]] = None,
        progress: _Progress = None,
    ) -> List[Dict[str, Any]]: ...
    def write_saliency(
        self,
        map: bytes,
        width: int,
        height: int,
        input: bytes,
        dir: str,
        stem: str,
        overwrite: bool = False,
        skip_existing: bool = False,
        signed: bool = False,
    ) -> List[str]: ...
    def fool(
        self,
        images: List[_Image],
        target: Optional[int] = None,
        method: str = "cs231n",
        epsilon: Optional[float] = None,
        steps: Optional[int] = None,
        step_size: Optional[float] = None,
        norm: str = "linf",
        random_start: bool = True,
        full_steps: bool = False,
        learning_rate: Optional[float] = None,
        max_iterations: Optional[int] = None,
        seed: int = 0,
        batch_size: int = 8,
        progress: _Progress = None,
    ) -> List[Dict[str, Any]]: ...
    def visualize(
        self,
        class_index: int,
        recipe: str = "cs231n",
        seed: int = 0,
        settings: Optional[List[Tuple[str, str]]] = None,
        init: Optional[_Image] = None,
        progress: _Progress = None,
    ) -> Dict[str, Any]: ...

def imagenet_class(query: str) -> int: ...
def imagenet_label(index: int) -> str: ...
def zoo() -> List[str]: ...
def methods() -> List[str]: ...
def saliency_passes(method: str, n: int, options: Optional[Dict[str, Any]] = None) -> int: ...
def evaluate(
    model: Model,
    images: List[_Image],
    names: List[str],
    methods: Optional[List[str]] = None,
    metrics: Optional[List[str]] = None,
    options: Optional[Dict[str, Any]] = None,
    boxes_file: Optional[str] = None,
    boxes_json: Optional[str] = None,
    progress: Optional[Any] = None,
) -> Dict[str, Any]: ...
def evaluate_names() -> Tuple[List[str], List[str]]: ...
