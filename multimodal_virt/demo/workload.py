"""A small multimodal workload: video frames and sensor packets, real I/O.

For ``duration_s`` seconds it writes synthetic video frames at ``fps`` into
``frames.bin`` and fixed-size sensor packets (IMU-like records) at
``sensor_hz`` into ``sensors.bin``, both as ring files so disk use stays
bounded. Writes use ``O_DIRECT`` from page-aligned buffers where the
filesystem allows it (each write is a block request the collector sees);
otherwise buffered writes each followed by ``fdatasync``.

With ``command_node`` set (the demo uses ``/dev/kvm`` where no GPU exists)
every frame also issues ``commands_per_frame`` cheap ``ioctl`` calls on it,
standing in for GPU command submission so the gpu_ioctl probe has real
calls to time.
"""

import dataclasses
import errno
import fcntl
import mmap
import os
import struct
import threading
import time

from oslo_log import log as logging

from multimodal_virt import exception

LOG = logging.getLogger(__name__)

BLOCK = 4096
KVM_GET_API_VERSION = 0xAE00
# seq, t_ns, accel xyz, gyro xyz, then zero padding to one block.
SENSOR_RECORD = struct.Struct('<Qq6f')


@dataclasses.dataclass
class WorkloadStats:
    """What the workload did.

    :param io_mode: ``o_direct`` or ``fdatasync``.
    """

    io_mode: str = None
    frames: int = 0
    packets: int = 0
    bytes_written: int = 0
    commands: int = 0
    command_node: str = None
    elapsed_s: float = 0.0

    def to_dict(self):
        return dataclasses.asdict(self)


def _aligned(size):
    """Return ``size`` rounded up to a whole number of blocks."""
    return max(BLOCK, (size + BLOCK - 1) // BLOCK * BLOCK)


class Workload(object):
    """Frames and sensor packets written to ``directory``.

    :param directory: existing directory for the data files.
    :param duration_s: how long to run.
    :param fps: video frames per second.
    :param frame_bytes: bytes per frame (rounded up to 4 KiB).
    :param sensor_hz: sensor packets per second (one 4 KiB block each).
    :param ring_frames: frames kept in the ring file before wrapping.
    :param command_node: character device to ``ioctl`` per frame, or None.
    :param commands_per_frame: ioctls per frame on ``command_node``.
    """

    def __init__(self, directory, duration_s, fps=30, frame_bytes=256 * 1024,
                 sensor_hz=200, ring_frames=64, command_node=None,
                 commands_per_frame=16):
        if not os.path.isdir(directory):
            raise exception.DemoError('workload directory %s does not exist'
                                      % directory)
        for name, value in (('duration_s', duration_s), ('fps', fps),
                            ('frame_bytes', frame_bytes),
                            ('sensor_hz', sensor_hz),
                            ('ring_frames', ring_frames)):
            if not value > 0:
                raise exception.DemoError('workload %s must be > 0, got %r'
                                          % (name, value))
        self.directory = directory
        self.duration_s = float(duration_s)
        self.fps = float(fps)
        self.frame_bytes = _aligned(int(frame_bytes))
        self.sensor_hz = float(sensor_hz)
        self.ring_frames = int(ring_frames)
        self.command_node = command_node
        self.commands_per_frame = int(commands_per_frame)
        self.stats = WorkloadStats(command_node=command_node)
        self._stop = threading.Event()

    def _open(self, name, probe_buf):
        """Open a data file with O_DIRECT if a test block write works."""
        path = os.path.join(self.directory, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        if self.stats.io_mode != 'fdatasync':
            try:
                fd = os.open(path, flags | os.O_DIRECT, 0o600)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
            else:
                try:
                    os.pwrite(fd, probe_buf, 0)
                    return fd, 'o_direct'
                except OSError as err:
                    os.close(fd)
                    if err.errno != errno.EINVAL:
                        raise
                LOG.info('%s refuses O_DIRECT writes; using fdatasync',
                         self.directory)
        return os.open(path, flags, 0o600), 'fdatasync'

    def _write(self, fd, buffer, offset):
        """One write (plus fdatasync when O_DIRECT is not available)."""
        os.pwrite(fd, buffer, offset)
        if self.stats.io_mode == 'fdatasync':
            os.fdatasync(fd)
        self.stats.bytes_written += len(buffer)

    def _fill_frame(self, view, index):
        # A moving gradient: cheap, and different for every frame.
        row = bytes((index + i) & 0xff for i in range(256))
        view[:len(row)] = row
        header = struct.pack('<Q', index).ljust(len(row), b'\0')
        view[len(row):len(row) * 2] = header

    def stop(self):
        """Ask :meth:`run` to end early."""
        self._stop.set()

    def run(self):
        """Write frames and packets until the duration is over.

        :returns: :class:`WorkloadStats`.
        :raises DemoError: if the data files cannot be written.
        """
        frame_buf = mmap.mmap(-1, self.frame_bytes)
        packet_buf = mmap.mmap(-1, BLOCK)
        command_fd = None
        fds = []
        try:
            frames_fd, mode = self._open('frames.bin', packet_buf)
            fds.append(frames_fd)
            self.stats.io_mode = mode
            sensors_fd, _mode = self._open('sensors.bin', packet_buf)
            fds.append(sensors_fd)
            if self.command_node:
                command_fd = os.open(self.command_node,
                                     os.O_RDWR | os.O_CLOEXEC)
            self._loop(frames_fd, sensors_fd, frame_buf, packet_buf,
                       command_fd)
        except OSError as err:
            raise exception.DemoError(
                'workload I/O in %s failed: %s' % (self.directory, err))
        finally:
            for fd in fds + ([command_fd] if command_fd is not None else []):
                os.close(fd)
            frame_buf.close()
            packet_buf.close()
            for name in ('frames.bin', 'sensors.bin'):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass
        return self.stats

    def _loop(self, frames_fd, sensors_fd, frame_buf, packet_buf,
              command_fd):
        # Views are released on any way out, so the buffers can close.
        with memoryview(frame_buf) as frame_view, \
                memoryview(packet_buf) as packet_view:
            self._paced(frames_fd, sensors_fd, frame_view, packet_view,
                        command_fd)

    def _paced(self, frames_fd, sensors_fd, frame_view, packet_view,
               command_fd):
        start = time.monotonic()
        end = start + self.duration_s
        next_frame = next_packet = start
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_packet:
                seq = self.stats.packets
                packet_view[:SENSOR_RECORD.size] = SENSOR_RECORD.pack(
                    seq, time.time_ns(), 0.01 * seq, 0.0, 9.81,
                    0.0, 0.0, 0.001 * seq)
                self._write(sensors_fd, packet_view,
                            (seq % (self.ring_frames * 64)) * BLOCK)
                self.stats.packets += 1
                next_packet += 1.0 / self.sensor_hz
            if now >= next_frame:
                index = self.stats.frames
                self._fill_frame(frame_view, index)
                self._write(frames_fd, frame_view,
                            (index % self.ring_frames) * self.frame_bytes)
                for _ in range(self.commands_per_frame
                               if command_fd is not None else 0):
                    fcntl.ioctl(command_fd, KVM_GET_API_VERSION)
                    self.stats.commands += 1
                self.stats.frames += 1
                next_frame += 1.0 / self.fps
            wait = min(next_frame, next_packet, end) - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
        self.stats.elapsed_s = time.monotonic() - start
