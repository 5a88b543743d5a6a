"""Which block devices the I/O probes count, and whether one still exists.

Stacked and virtual block devices (loop, device-mapper, md, zram, ramdisk)
issue block requests of their own on top of the disk's, so counting them
would count one I/O twice and let a loop device's latency pass for the
disk's. They are told apart by their driver's major number, read from the
``Block devices:`` section of ``/proc/devices`` (majors such as
device-mapper's are assigned at run time, so they are never hard-coded).
Pure functions over file contents, plus two small readers.
"""

import os

#: Name prefixes of the devices each driver creates, for readers that see
#: only names (a recorded /proc without ``devices``).
DRIVER_NAME_PREFIXES = {
    'loop': 'loop',
    'device-mapper': 'dm-',
    'md': 'md',
    'zram': 'zram',
    'ramdisk': 'ram',
}


def parse_block_majors(text):
    """``{driver name: set of majors}`` from ``/proc/devices`` content.

    :param text: the file content; only the ``Block devices:`` section is
        read, malformed lines are skipped.
    """
    majors = {}
    in_block = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(':'):
            in_block = stripped == 'Block devices:'
            continue
        if not in_block:
            continue
        number, _sep, name = stripped.partition(' ')
        if number.isdigit() and name.strip():
            majors.setdefault(name.strip(), set()).add(int(number))
    return majors


def excluded_majors(drivers, proc_devices='/proc/devices'):
    """Sorted majors of the named drivers that this kernel has registered.

    :param drivers: driver names as in ``/proc/devices`` (``loop``,
        ``device-mapper``, ...); names the kernel lacks are ignored.
    :param proc_devices: path of ``/proc/devices``.
    :returns: list of ints (empty when the file cannot be read).
    """
    try:
        with open(proc_devices, encoding='ascii', errors='replace') as fh:
            known = parse_block_majors(fh.read(256 * 1024))
    except OSError:
        return []
    result = set()
    for driver in drivers:
        result |= known.get(driver, set())
    return sorted(result)


def excluded_name(name, drivers):
    """True if a device ``name`` looks like one of ``drivers``' devices."""
    for driver in drivers:
        prefix = DRIVER_NAME_PREFIXES.get(driver)
        if prefix and name.startswith(prefix) and name[len(prefix):][:1]\
                .isdigit():
            return True
    return False


def device_exists(major, minor, sysfs='/sys'):
    """True while block device ``major:minor`` exists (sysfs entry)."""
    return os.path.exists(os.path.join(sysfs, 'dev', 'block',
                                       '%d:%d' % (major, minor)))
