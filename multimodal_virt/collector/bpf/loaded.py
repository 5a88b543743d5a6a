"""What both loaders (libbpf, bcc) hand back: a loaded, attached object."""

import abc


class LoadedPrograms(metaclass=abc.ABCMeta):
    """Programs loaded and attached by a backend, with their maps.

    Subclasses implement :meth:`_entries` and :meth:`close`; ``events``,
    ``skipped`` and ``prog_ids`` are set by each backend.
    """

    @abc.abstractmethod
    def _entries(self, name, delete):
        """Return ``{key tuple: value tuple}`` of map ``name``.

        :param delete: delete each entry as it is read (read-and-reset).
        """

    @abc.abstractmethod
    def _delete(self, name, raw_key):
        """Delete the entry with packed key ``raw_key`` from map ``name``."""

    @abc.abstractmethod
    def close(self):
        """Detach and free everything; safe to call twice."""

    def recursion_misses(self):
        """Events the kernel did not run our programs for, because a BPF
        program was already running on that CPU (``None``: not known)."""
        return None

    def read(self, name):
        """Return ``{key tuple: value tuple}`` of map ``name``."""
        return self._entries(name, delete=False)

    def pop(self, name):
        """Like :meth:`read`, deleting each entry as it is read."""
        return self._entries(name, delete=True)

    def delete(self, name, key):
        """Delete the entry ``key`` (a key tuple) from map ``name``."""
        self._delete(name, self.spec.map(name).pack_key(key))
