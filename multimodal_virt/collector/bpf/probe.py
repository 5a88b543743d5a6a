"""Common base of the eBPF probes: load through a backend, read, stop."""

from oslo_log import log as logging
from stevedore import named

from multimodal_virt.collector.bpf import backend as bpf_backend
from multimodal_virt.collector.probes import base
from multimodal_virt import exception

LOG = logging.getLogger(__name__)

NAMESPACE = 'multimodal_virt.probes'


class BpfProbe(base.Probe):
    """A probe backed by one BPF object described by :attr:`spec`.

    Subclasses set :attr:`name` and :attr:`spec` and implement
    :meth:`read`; they may override :meth:`settings`.

    :param conf: ConfigOpts with ``[multimodal_virt_probes]`` registered.
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

    def settings(self):
        """``{const volatile global: value}`` written before load."""
        return {}

    def max_entries(self):
        """``{map name: max_entries}`` from the map size options."""
        return {m.name: getattr(self.group, m.size_option)
                for m in self.spec.maps if m.size_option}

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
        loader = bpf_backend.get_backend(self.group, self._host)
        self._loaded = loader.load(self.spec, self.settings(),
                                   self.max_entries())
        self.backend_name = loader.name
        LOG.info('Probe %(name)s attached with %(backend)s to %(events)s',
                 {'name': self.name, 'backend': loader.name,
                  'events': ', '.join(self._loaded.events)})
        self.read()  # baseline: the first collect() covers only its window

    def collect(self):
        """Read and reset; return a :class:`ProbeReading` (source ebpf)."""
        if self._loaded is None:
            raise exception.ProbeError('probe %s is not started' % self.name)
        return self.read()

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
                self._host or bpf_backend.HostProbe(self.group))
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


def describe_enabled(conf):
    """Return ``describe()`` of every enabled probe (``--dump-bpf``)."""
    names = list(conf.multimodal_virt_collector.probes)
    texts = []

    def failed(manager, entrypoint, err):
        texts.append('probe %s: cannot be loaded: %s' % (entrypoint.name,
                                                         err))
    manager = named.NamedExtensionManager(
        NAMESPACE, names, invoke_on_load=True, invoke_args=(conf,),
        on_load_failure_callback=failed, name_order=True)
    for extension in manager:
        texts.append(extension.obj.describe())
    return texts
