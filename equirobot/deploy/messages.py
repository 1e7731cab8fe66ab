"""ROS messages as plain dicts, and arrays in and out of them.

Both transports (``ros1``, ``rosbridge``) carry messages in the form rosbridge's JSON protocol uses: a
dict per message, field names as in the ``.msg`` files, ``header.stamp`` as ``{"secs", "nsecs"}``
(ROS 2's ``{"sec", "nanosec"}`` is read too) and ``uint8[]`` data as bytes (rospy) or a base64 string
(rosbridge). This module turns the sensor messages a robot publishes into the arrays of an observation
and the policy's targets into messages. It imports numpy only.

Message types used (``package/Type``): ``geometry_msgs/PoseStamped`` (end-effector pose and target),
``geometry_msgs/PoseArray`` (tracked object poses), ``sensor_msgs/JointState`` (joint positions; the
gripper command), ``sensor_msgs/Image`` (``rgb8`` colour, ``32FC1`` depth in metres),
``sensor_msgs/PointCloud2`` (float32 x, y, z and a packed ``rgb``), ``std_msgs/Bool`` (e-stop),
``std_msgs/Int64`` (episode seed), ``std_msgs/String`` (events and results, JSON).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

Message = dict[str, Any]

POSE_STAMPED = "geometry_msgs/PoseStamped"
POSE_ARRAY = "geometry_msgs/PoseArray"
JOINT_STATE = "sensor_msgs/JointState"
IMAGE = "sensor_msgs/Image"
POINT_CLOUD2 = "sensor_msgs/PointCloud2"
BOOL = "std_msgs/Bool"
INT64 = "std_msgs/Int64"
STRING = "std_msgs/String"

FLOAT32 = 7
"""``sensor_msgs/PointField`` datatype of a float32."""
_IMAGE_DTYPES = {"rgb8": (np.uint8, 3), "mono8": (np.uint8, 1), "32FC1": (np.float32, 1)}


class MessageError(ValueError):
    """A message that cannot become the array asked for; names the field and what was expected."""


def stamp(seconds: float) -> Message:
    """Seconds as a ROS 1 time."""
    secs = math.floor(seconds)
    return {"secs": int(secs), "nsecs": int(round((seconds - secs) * 1e9)) % 1_000_000_000}


def seconds_of(time: Message) -> float:
    """A ``{"secs", "nsecs"}`` (or ROS 2 ``{"sec", "nanosec"}``) time as seconds."""
    secs = time["secs"] if "secs" in time else time.get("sec", 0)
    nsecs = time["nsecs"] if "nsecs" in time else time.get("nanosec", 0)
    return float(secs) + float(nsecs) * 1e-9


def header(frame: str, seconds: float) -> Message:
    """A ``std_msgs/Header``."""
    return {"stamp": stamp(seconds), "frame_id": frame}


def header_seconds(msg: Message) -> float:
    """The stamp of a stamped message, seconds."""
    return seconds_of(msg["header"]["stamp"])


def _bytes(data: Any) -> bytes:
    """``uint8[]`` data as rospy (bytes) or rosbridge (base64 text, or a list of ints) gives it."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return base64.b64decode(data)
    return bytes(bytearray(data))


def _pose(pos: np.ndarray, quat_xyzw: np.ndarray) -> Message:
    x, y, z = (float(v) for v in pos)
    qx, qy, qz, qw = (float(v) for v in quat_xyzw)
    return {"position": {"x": x, "y": y, "z": z}, "orientation": {"x": qx, "y": qy, "z": qz, "w": qw}}


def _read_pose(pose: Message) -> np.ndarray:
    p, q = pose["position"], pose["orientation"]
    return np.array([p["x"], p["y"], p["z"], q["x"], q["y"], q["z"], q["w"]], dtype=np.float64)


def pose_stamped(pos: np.ndarray, quat_xyzw: np.ndarray, frame: str, seconds: float) -> Message:
    """A ``PoseStamped`` of a position and an xyzw quaternion."""
    return {"header": header(frame, seconds), "pose": _pose(pos, quat_xyzw)}


def read_pose_stamped(msg: Message) -> np.ndarray:
    """(7,) position + xyzw quaternion of a ``PoseStamped``."""
    return _read_pose(msg["pose"])


def pose_array(poses: np.ndarray, frame: str, seconds: float) -> Message:
    """(K, 7) position + xyzw quaternion rows as a ``PoseArray``."""
    return {"header": header(frame, seconds), "poses": [_pose(p[:3], p[3:7]) for p in poses]}


def read_pose_array(msg: Message) -> np.ndarray:
    """(K, 7) rows of a ``PoseArray``."""
    return np.array([_read_pose(p) for p in msg["poses"]], dtype=np.float64).reshape(-1, 7)


def joint_state(names: list[str], positions: np.ndarray, seconds: float, frame: str = "") -> Message:
    """A ``JointState`` of named positions."""
    return {
        "header": header(frame, seconds),
        "name": list(names),
        "position": [float(v) for v in positions],
        "velocity": [],
        "effort": [],
    }


def read_joints(msg: Message, names: list[str]) -> np.ndarray:
    """The positions of ``names`` in a ``JointState``, in that order; names every joint that is missing."""
    have = dict(zip(msg["name"], msg["position"], strict=False))
    missing = [n for n in names if n not in have]
    if missing:
        raise MessageError(f"JointState lacks joint(s) {missing}; it has {list(msg['name'])}")
    return np.array([have[n] for n in names], dtype=np.float64)


def image(array: np.ndarray, frame: str, seconds: float) -> Message:
    """An (H, W, 3) uint8 image as ``rgb8``, an (H, W[, 1]) float32 depth image as ``32FC1``."""
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        encoding = "rgb8"
    elif array.dtype == np.float32 and (array.ndim == 2 or array.shape[2] == 1):
        encoding = "32FC1"
    else:
        raise MessageError(f"no image encoding for an array of {array.dtype} {array.shape}")
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    return {
        "header": header(frame, seconds),
        "height": h,
        "width": w,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": array.nbytes // h,
        "data": array.tobytes(),
    }


def read_image(msg: Message) -> np.ndarray:
    """(H, W, C) array of an ``rgb8``, ``mono8`` or ``32FC1`` image."""
    encoding = msg["encoding"]
    if encoding not in _IMAGE_DTYPES:
        raise MessageError(f"Image encoding {encoding!r} is not supported; valid: {list(_IMAGE_DTYPES)}")
    dtype, channels = _IMAGE_DTYPES[encoding]
    h, w, step = int(msg["height"]), int(msg["width"]), int(msg["step"])
    data = _bytes(msg["data"])
    row = w * channels * np.dtype(dtype).itemsize
    if step < row or len(data) < step * h:
        raise MessageError(f"Image of {h}x{w} {encoding}: step {step} and {len(data)} data bytes do not fit")
    rows = np.frombuffer(data, dtype=np.uint8)[: step * h].reshape(h, step)[:, :row]
    return np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels)


def _fields(names: str) -> list[Message]:
    return [{"name": n, "offset": 4 * i, "datatype": FLOAT32, "count": 1} for i, n in enumerate(names)]


def point_cloud2(points: np.ndarray, frame: str, seconds: float, packed: bool = True) -> Message:
    """(N, 6) xyz + rgb in [0, 1] as an unorganised ``PointCloud2`` with float32 x, y, z.

    The colour is a packed ``rgb`` (what depth cameras send: 8 bits a channel) or, ``packed=False``,
    float32 r, g, b (exact: the simulated arm sends the simulator's colours unchanged).
    """
    n = len(points)
    rows = np.empty((n, 4 if packed else 6), dtype=np.float32)
    rows[:, :3] = points[:, :3]
    if packed:
        rgb = np.round(np.clip(points[:, 3:6], 0, 1) * 255).astype(np.uint32)
        rows[:, 3] = ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).view(np.float32)
    else:
        rows[:, 3:] = points[:, 3:6]
    step = rows.shape[1] * 4
    return {
        "header": header(frame, seconds),
        "height": 1,
        "width": n,
        "fields": _fields("xyz" + ("" if packed else "rgb"))
        + ([{**_fields("xyzr")[3], "name": "rgb"}] if packed else []),
        "is_bigendian": False,
        "point_step": step,
        "row_step": step * n,
        "data": rows.tobytes(),
        "is_dense": True,
    }


def read_point_cloud2(msg: Message) -> np.ndarray:
    """(N, 6) float32 xyz + rgb in [0, 1] of a ``PointCloud2`` with float32 x, y, z.

    The colour is read from a packed ``rgb`` or float32 r, g, b in [0, 1]. Points with a non-finite
    coordinate are dropped: that is how a depth camera marks missing returns.
    """
    offsets = {f["name"]: int(f["offset"]) for f in msg["fields"] if int(f["datatype"]) == FLOAT32}
    if not {"x", "y", "z"} <= set(offsets):
        raise MessageError(
            f"PointCloud2 needs float32 fields x, y, z; it has {[f['name'] for f in msg['fields']]}"
        )
    if msg.get("is_bigendian"):
        raise MessageError("PointCloud2 is big-endian; only little-endian clouds are supported")
    step, n = int(msg["point_step"]), int(msg["width"]) * int(msg["height"])
    data = _bytes(msg["data"])
    if len(data) < step * n:
        raise MessageError(f"PointCloud2 of {n} points of {step} bytes has only {len(data)} data bytes")
    raw = np.frombuffer(data, dtype=np.uint8)[: step * n].reshape(n, step)

    def column(name: str) -> np.ndarray:
        start = offsets[name]
        return np.ascontiguousarray(raw[:, start : start + 4]).view(np.float32)[:, 0]

    out = np.zeros((n, 6), dtype=np.float32)
    for i, name in enumerate("xyz"):
        out[:, i] = column(name)
    if "rgb" in offsets:
        packed = column("rgb").view(np.uint32)
        for i, shift in enumerate((16, 8, 0)):
            out[:, 3 + i] = ((packed >> shift) & 0xFF) / 255.0
    elif {"r", "g", "b"} <= set(offsets):
        for i, name in enumerate("rgb"):
            out[:, 3 + i] = column(name)
    return out[np.isfinite(out[:, :3]).all(axis=1)]
