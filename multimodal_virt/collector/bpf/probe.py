"""Common base of the eBPF probes: load through a backend, read, stop."""

from oslo_log import log as logging

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.probes import base
from multimodal_virt import exception

LOG = logging.getLogger(__name__)

NAMESPACE = 'multimodal_virt.probes'


class BpfProbe(base.Probe):
    """A probe backed by one BPF object described by :attr:`spec`.

    Subclasses set :attr:`name` and :attr:`spec` and implement
    :meth:`read`; they may override :meth:`settings`.

    :param conf: ConfigOpts with ``[multimodal_virt_probes]`` and the
        backends' groups (``[multimodal_virt_libbpf]``,
        ``[multimodal_virt_bcc]``) registered; the chosen backend receives
        its own group.
    :param host: backend-selection host probe (tests inject one).
    """

    #: :class:`~multimodal_virt.collector.bpf.spec.ProbeSpec`.
    spec = None

    def __init__(self, conf, host=None):
        super().__init__(conf)
        self.group = conf.multimodal_virt_probes
        self._host = host
        self._loaded = None
        self.backend_name = None
        self._drops_before = None
        self._drops_logged = set()
        self._misses_before = 0
        self._anomalies_before = {}
        #: Totals of the ``anomalies`` map's reasons since start (probes
        #: with such a map set their reasons here).
        self.anomalies = {}

    def settings(self):
        """``{const volatile global: value}`` written before load."""
        return {}

    def max_entries(self):
        """``{map name: max_entries}`` from the map size options."""
        return {m.name: getattr(self.group, m.size_option)
                for m in self.spec.maps if m.size_option}

    def count_anomalies(self, names):
        """Add the window's ``anomalies`` map to :attr:`anomalies`.

        Losses (a full map) are not anomalies: :meth:`read_drops`
        publishes them in every sample's ``dropped``.

        :param names: the reason counted in each slot of the map.
        """
        current = {names[key[0]]: value[0]
                   for key, value in self.loaded.read('anomalies').items()
                   if key[0] < len(names)}
        deltas = decode.counter_deltas(current, self._anomalies_before)
        self._anomalies_before = current
        for reason, delta in deltas.items():
            self.anomalies[reason] = self.anomalies.get(reason, 0) + delta
        if deltas:
            LOG.debug('%(name)s: %(deltas)s', {
                'name': self.name, 'deltas': ', '.join(
                    '%s +%d' % item for item in sorted(deltas.items()))})

    @property
    def loaded(self):
        """The loaded object, or ``None`` before start / after stop."""
        return self._loaded

    @property
    def events(self):
        """Kernel events the attached programs count."""
        return self._loaded.events if self._loaded else ()

    def start(self):
        """Load and attach. :raises ProbeError: or ``BPFUnavailable``."""
        if self._loaded is not None:
            return
        loader = bpf_backend.get_backend(self.conf, self._host)
        self._loaded = loader.load(self.spec, self.settings(),
                                   self.max_entries())
        self.backend_name = loader.name
        LOG.info('Probe %(name)s attached with %(backend)s to %(events)s',
                 {'name': self.name, 'backend': loader.name,
                  'events': ', '.join(self._loaded.events)})
        self.read()  # baseline: the first collect() covers only its window
        self._drops_before = None
        self._misses_before = 0

    def collect(self):
        """Read and reset; return a :class:`ProbeReading` (source ebpf).

        The reading's ``dropped`` holds the events each bounded map lost
        in the window (see :meth:`read_drops`).
        """
        if self._loaded is None:
            raise exception.ProbeError('probe %s is not started' % self.name)
        reading = self.read()
        reading.dropped = self.read_drops()
        return reading

    def read_drops(self):
        """Events lost per bounded map since the previous call.

        The first loss of each map is logged once (a warning naming the
        option that sizes it); after that only the published counters say
        how many more were lost.

        :returns: ``{"<probe>.<map>": count}`` with every bounded map, and
            ``"<probe>.nested"`` (see :meth:`_read_misses`).
        """
        if not self.spec.drops:
            return self._read_misses()
        slots = self._loaded.read('drops')
        current = {}
        for index, map_name in enumerate(self.spec.drops):
            current[map_name] = slots.get((index,), (0,))[0]
        first = self._drops_before is None
        before_all = self._drops_before or {}  # counters start at 0
        deltas = {}
        for map_name, total in current.items():
            before = before_all.get(map_name, 0)
            delta = total - before if total >= before else total
            deltas['%s.%s' % (self.name, map_name)] = delta
            spec_map = self.spec.map(map_name)
            if (not delta or map_name in self._drops_logged
                    or (spec_map.evicts and first)):
                continue
            self._drops_logged.add(map_name)
            LOG.warning(
                'Probe %(probe)s: %(count)d event(s) were not counted: ' +
                ('%(count)d completion(s) found no start time in BPF map '
                 '%(map)s (not recorded in the full table, or no start event '
                 'was seen for them)' if spec_map.evicts else
                 'BPF map %(map)s was full') +
                '; losses are published with every sample '
                '(dropped) and not logged again%(hint)s',
                {'probe': self.name, 'map': map_name, 'count': delta,
                 'hint': ('; raise [multimodal_virt_probes] %s'
                          % spec_map.size_option)
                 if spec_map.size_option else ''})
        self._drops_before = current
        deltas.update(self._read_misses())
        return deltas

    def _read_misses(self):
        """``{"<probe>.nested": count}``: events the kernel skipped our
        programs for in the window because a BPF program was already
        running on that CPU (one of ours interrupted by an event it also
        traces, or, for classic tracepoints (bcc), any program of the
        host), logged once; ``{}`` where the loader cannot tell."""
        counter = getattr(self._loaded, 'recursion_misses', None)
        misses = counter() if counter else None
        if misses is None:
            return {}
        delta = (misses - self._misses_before
                 if misses >= self._misses_before else misses)
        self._misses_before = misses
        if delta and 'nested' not in self._drops_logged:
            self._drops_logged.add('nested')
            LOG.warning(
                'Probe %(probe)s: %(count)d event(s) were not counted: the '
                'kernel did not run its programs because a BPF program was '
                'already running on that CPU (the event came in an '
                'interrupt); losses are published with every sample '
                '(dropped, %(probe)s.nested) and not logged again',
                {'probe': self.name, 'count': delta})
        return {'%s.nested' % self.name: delta}

    def read(self):
        """Decode the maps into a ProbeReading."""
        raise NotImplementedError()

    def stop(self):
        """Destroy links and close the object; safe to call twice."""
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.close()
            LOG.info('Probe %s detached', self.name)

    def describe(self):
        """What :meth:`start` would load, without loading anything."""
        lines = ['probe %s: %s.bpf.c (backend option: %s)'
                 % (self.name, self.spec.source, self.group.backend)]
        try:
            chosen = bpf_backend.select(
                self.group.backend,
                self._host or bpf_backend.HostProbe(self.conf))
            lines.append('  backend: %s' % chosen)
        except exception.BPFUnavailable as err:
            lines.append('  backend: unavailable (%s)' % err)
        for program in self.spec.programs:
            lines.append('  program %s -> %s %s%s'
                         % (program.name, program.kind, program.event,
                            '' if program.required else ' (optional)'))
        for name, value in sorted(self.settings().items()):
            lines.append('  const volatile %s = %r' % (name, value))
        for name, size in sorted(self.max_entries().items()):
            lines.append('  map %s max_entries = %d' % (name, size))
        return '\n'.join(lines)
