"""Child process for the ledger crash test: claim, acknowledge, release.

Usage: ``python -m tests.functional.libvirt.ledger_worker LEDGER ACKS ID``.
Loops forever until killed. After a claim returns it appends
``claim <uuid> <addr,...>`` to ACKS; it writes ``releasing <uuid>`` before
a release and ``release <uuid>`` after it. What the acks say happened must
be in the ledger after a SIGKILL.
"""

import os
import sys
import uuid

from multimodal_virt import exception
from multimodal_virt.pci import ledger as vf_ledger

NAMESPACE = uuid.UUID('1b4e28ba-2fa1-11d2-883f-0016d3cca427')


def instance_uuid(worker, k):
    """UUID of the k-th instance of a worker."""
    return str(uuid.uuid5(NAMESPACE, '%s-%d' % (worker, k)))


def main(argv):
    path, acks, worker = argv
    ledger = vf_ledger.Ledger(path)
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    k = 0
    while True:
        owner = instance_uuid(worker, k)
        try:
            got = ledger.claim(owner, count=1 + k % 2)
        except exception.ClaimError:
            got = None  # pool momentarily empty: try the next instance
        if got:
            os.write(fd, ('claim %s %s\n' % (
                owner, ','.join(str(a) for a in got))).encode())
            os.write(fd, ('releasing %s\n' % owner).encode())
            ledger.release(owner)
            os.write(fd, ('release %s\n' % owner).encode())
        k += 1


if __name__ == '__main__':
    main(sys.argv[1:])
