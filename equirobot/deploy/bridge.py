"""One bridge interface to ROS, two transports behind it.

A :class:`Bridge` publishes and subscribes messages in the dict form of :mod:`equirobot.deploy.messages`:

* ``ros1``: rospy, a ROS 1 node on the master at ``ROS_MASTER_URI`` (Debian's ROS packages);
* ``rosbridge``: roslibpy, the rosbridge v2 websocket protocol, for a ROS 2 robot or a remote ROS
  machine running ``rosbridge_server``.

Callbacks run on the transport's own threads; the node and the simulated arm only store what arrives.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

from equirobot.deploy.messages import Message

TRANSPORTS = ("ros1", "rosbridge")


class BridgeError(RuntimeError):
    """A transport that cannot start: ROS missing, no master, no rosbridge server; says which."""


class Bridge:
    """Publish and subscribe dict messages by topic name and ``package/Type``."""

    def publisher(self, topic: str, msg_type: str) -> Callable[[Message], None]:
        """A function that publishes one message on ``topic``."""
        raise NotImplementedError

    def subscribe(self, topic: str, msg_type: str, callback: Callable[[Message], None]) -> None:
        raise NotImplementedError

    def wait_for_subscribers(self, topic: str, timeout: float) -> bool:
        """Block until someone listens on a topic this bridge publishes (or ``timeout`` seconds pass)."""
        return True

    def close(self) -> None:
        pass


def make_bridge(transport: str, name: str, host: str = "localhost", port: int = 9090) -> Bridge:
    """A connected bridge: ``ros1`` (node ``name`` on the ROS master) or ``rosbridge`` (``host:port``)."""
    if transport == "ros1":
        return Ros1Bridge(name)
    if transport == "rosbridge":
        return RosbridgeBridge(host, port)
    raise ValueError(f"transport={transport!r}; valid: {list(TRANSPORTS)}")


# -- ros1 ----------------------------------------------------------------------------------------------
def import_rospy():
    """Import rospy and roslib's message-class lookup; a clear error where Debian's ROS is missing."""
    try:
        import rospy
        from roslib.message import get_message_class
    except ImportError as error:
        raise BridgeError(
            f"transport=ros1 needs rospy ({error}); `make setup` installs Debian's ros-core and "
            "python3-rospy and links /usr/lib/python3/dist-packages into the venv"
        ) from error
    return rospy, get_message_class


def ros_message(msg_class: Any, data: Message) -> Any:
    """A rospy message of ``msg_class`` filled from a dict (fields left out keep their defaults)."""
    import genpy
    from roslib.message import get_message_class

    msg = msg_class()
    for field, kind in zip(msg.__slots__, msg._slot_types, strict=True):
        if field not in data:
            continue
        value, base, is_array = data[field], kind.split("[")[0], "[" in kind
        if base in ("time", "duration"):
            cls = genpy.Time if base == "time" else genpy.Duration
            value = cls(
                int(value.get("secs", value.get("sec", 0))), int(value.get("nsecs", value.get("nanosec", 0)))
            )
        elif is_array and base in ("uint8", "char"):
            value = base64.b64decode(value) if isinstance(value, str) else bytes(value)
        elif "/" in base or base == "Header":
            sub = get_message_class("std_msgs/Header" if base == "Header" else base)
            value = [ros_message(sub, v) for v in value] if is_array else ros_message(sub, value)
        setattr(msg, field, value)
    return msg


def message_dict(msg: Any) -> Any:
    """A rospy message (or time, or list of them) as the dict form of :mod:`equirobot.deploy.messages`."""
    if hasattr(msg, "__slots__"):
        return {field: message_dict(getattr(msg, field)) for field in msg.__slots__}
    if isinstance(msg, list | tuple):
        return [message_dict(m) for m in msg]
    return msg


class Ros1Bridge(Bridge):
    """rospy: one ROS 1 node per process (rospy's rule), started on the first bridge."""

    def __init__(self, name: str) -> None:
        rospy, self._get_class = import_rospy()
        self._rospy = rospy
        self._publishers: dict[str, Any] = {}
        self._subscribers: list[Any] = []
        import rosgraph

        if not rosgraph.is_master_online():
            raise BridgeError(
                f"transport=ros1: no ROS master at {rosgraph.get_master_uri()} (start `roscore`)"
            )
        if not rospy.core.is_initialized():
            rospy.init_node(name, anonymous=False, disable_signals=True)

    def _class(self, msg_type: str) -> Any:
        cls = self._get_class(msg_type)
        if cls is None:
            raise BridgeError(f"unknown ROS message type {msg_type!r}")
        return cls

    def publisher(self, topic: str, msg_type: str) -> Callable[[Message], None]:
        cls = self._class(msg_type)
        pub = self._rospy.Publisher(topic, cls, queue_size=10)
        self._publishers[topic] = pub
        return lambda data: pub.publish(ros_message(cls, data))

    def subscribe(self, topic: str, msg_type: str, callback: Callable[[Message], None]) -> None:
        cls = self._class(msg_type)
        self._subscribers.append(
            self._rospy.Subscriber(topic, cls, lambda msg: callback(message_dict(msg)), queue_size=10)
        )

    def wait_for_subscribers(self, topic: str, timeout: float) -> bool:
        import time

        pub, end = self._publishers[topic], time.monotonic() + timeout
        while pub.get_num_connections() == 0 and time.monotonic() < end:
            time.sleep(0.01)
        return pub.get_num_connections() > 0

    def close(self) -> None:
        for sub in self._subscribers:
            sub.unregister()
        for pub in self._publishers.values():
            pub.unregister()
        self._subscribers.clear()
        self._publishers.clear()


# -- rosbridge -----------------------------------------------------------------------------------------
def json_safe(data: Any) -> Any:
    """Bytes as base64 text (rosbridge's encoding of ``uint8[]``), recursively."""
    if isinstance(data, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(data)).decode("ascii")
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return data


class RosbridgeBridge(Bridge):
    """roslibpy client of a rosbridge v2 server (``ws://host:port``)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        try:
            import roslibpy
        except ImportError as error:  # pragma: no cover - a dependency of the project
            raise BridgeError(f"transport=rosbridge needs roslibpy ({error})") from error
        self._roslibpy = roslibpy
        self._ros = roslibpy.Ros(host=host, port=port)
        try:
            self._ros.run(timeout=timeout)
        except Exception as error:  # roslibpy raises its own timeout and twisted's connection errors
            raise BridgeError(
                f"transport=rosbridge: no rosbridge server at ws://{host}:{port} ({error})"
            ) from error
        self._topics: list[Any] = []
        self._lock = threading.Lock()

    def publisher(self, topic: str, msg_type: str) -> Callable[[Message], None]:
        handle = self._roslibpy.Topic(self._ros, topic, msg_type, queue_length=10)
        handle.advertise()
        self._topics.append(handle)

        def publish(data: Message) -> None:
            with self._lock:
                handle.publish(self._roslibpy.Message(json_safe(data)))

        return publish

    def subscribe(self, topic: str, msg_type: str, callback: Callable[[Message], None]) -> None:
        handle = self._roslibpy.Topic(self._ros, topic, msg_type, queue_length=10)
        handle.subscribe(lambda message: callback(dict(message)))
        self._topics.append(handle)

    def close(self) -> None:
        for handle in self._topics:
            if handle.is_advertised:
                handle.unadvertise()
            if handle.is_subscribed:
                handle.unsubscribe()
        self._topics.clear()
        self._ros.terminate()
