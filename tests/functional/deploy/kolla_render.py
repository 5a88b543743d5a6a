"""Render and merge the kolla-ansible files of ``deploy/kolla/``.

kolla-ansible renders every config source with Jinja2 (the ansible
variables of the host) and merges them with its ``merge_configs`` action:
sources are read in order, a key set in a later source replaces all values
of that key from earlier ones, and a key repeated inside one source keeps
every value (how multi-valued options such as ``[pci] device_spec`` are
written). This module does the same with plain Jinja2 and oslo.config's
INI parser, so the result can be checked (and previewed) without ansible::

    python -m tests.functional.deploy.kolla_render \\
        --vars deploy/kolla/globals-multimodal-virt.yml \\
        --pci-config <(multimodal-virt pci config --format json) \\
        nova.conf deploy/kolla/config/nova/nova-compute.conf
"""

import argparse
import collections
import io
import json
import os
import sys

from oslo_config import iniparser
import yaml

from multimodal_virt import exception

_ORPHAN = None  # key of options that appear before any section header


def _environment(directory):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined, lstrip_blocks=True,
        trim_blocks=True, keep_trailing_newline=True)
    env.filters['to_json'] = lambda value: json.dumps(value, sort_keys=True)
    return env


def resolve(variables, depth=5):
    """Template the string values of ``variables`` with each other.

    Ansible does this lazily (a variable may be ``"{{ other }}:11211"``);
    here it is done up front, at most ``depth`` rounds.

    :returns: a new dict.
    """
    env = _environment(os.getcwd())

    def expand(value, context):
        if isinstance(value, str) and '{{' in value:
            return env.from_string(value).render(**context)
        if isinstance(value, list):
            return [expand(item, context) for item in value]
        if isinstance(value, dict):
            return {k: expand(v, context) for k, v in value.items()}
        return value

    resolved = dict(variables)
    for _ in range(depth):
        expanded = {k: expand(v, resolved) for k, v in resolved.items()}
        if expanded == resolved:
            break
        resolved = expanded
    return resolved


def render(path, variables):
    """Render one Jinja2 source the way kolla-ansible's templar does.

    :param path: template file.
    :param variables: dict of template variables.
    :returns: the rendered text.
    :raises MultimodalVirtError: naming the file and the template error.
    """
    import jinja2

    env = _environment(os.path.dirname(os.path.abspath(path)))
    try:
        return env.get_template(os.path.basename(path)).render(
            **resolve(variables))
    except jinja2.TemplateError as err:
        raise exception.MultimodalVirtError(
            'cannot render %s: %s (variables given: %s)'
            % (path, err, ', '.join(sorted(variables)) or 'none'))


class _Parser(iniparser.BaseParser):
    """Collects ``{section: {key: [value, ...]}}`` of one source."""

    def __init__(self):
        super().__init__()
        self.sections = collections.OrderedDict()
        self._current = None

    def new_section(self, section):
        self._current = self.sections.setdefault(
            section, collections.OrderedDict())

    def assignment(self, key, value):
        if self._current is None:
            self.new_section(_ORPHAN)
        self._current.setdefault(key, []).append('\n'.join(value))


def parse(text):
    """Parse INI text into ``{section: {key: [values]}}``.

    :raises MultimodalVirtError: with the line of a syntax error.
    """
    parser = _Parser()
    try:
        parser.parse(io.StringIO(text))
    except iniparser.ParseError as err:
        raise exception.MultimodalVirtError('INI syntax error %s' % err)
    return parser.sections


def merge(texts):
    """Merge INI sources in order, with kolla's ``merge_configs`` rules.

    :param texts: iterable of INI texts, lowest priority first.
    :returns: ``{section: {key: [values]}}``.
    """
    merged = collections.OrderedDict()
    for text in texts:
        for section, options in parse(text).items():
            target = merged.setdefault(section, collections.OrderedDict())
            target.update(options)
    return merged


def dump(merged):
    """Write merged sections back as INI text (one line per value)."""
    out = io.StringIO()
    for section, options in merged.items():
        if section is not _ORPHAN:
            out.write('[%s]\n' % section)
        for key, values in options.items():
            for value in values:
                out.write('%s = %s\n' % (key, value) if value
                          else '%s =\n' % key)
        out.write('\n')
    return out.getvalue()


def load_variables(var_files=(), pci_config=None):
    """Template variables from YAML files and a generated PCI config.

    :param var_files: YAML files of variables (later ones win).
    :param pci_config: path of ``multimodal-virt pci config --format json``
        output; sets ``mmv_pci_device_spec`` and ``mmv_pci_alias``.
    :returns: dict of variables.
    """
    variables = {}
    for path in var_files:
        with open(path) as handle:
            loaded = yaml.safe_load(handle) or {}
        if not isinstance(loaded, dict):
            raise exception.MultimodalVirtError(
                'variables file %s must hold a mapping, got %s'
                % (path, type(loaded).__name__))
        variables.update(loaded)
    if pci_config:
        with open(pci_config) as handle:
            try:
                pci = json.load(handle)['pci']
                variables['mmv_pci_device_spec'] = pci['device_spec']
                variables['mmv_pci_alias'] = pci['alias']
            except (ValueError, KeyError, TypeError) as err:
                raise exception.MultimodalVirtError(
                    '%s is not "multimodal-virt pci config --format json" '
                    'output: %s' % (pci_config, err))
    return variables


def render_and_merge(sources, variables):
    """Render every source and merge them; returns the merged INI text."""
    return dump(merge(render(path, variables) for path in sources))


def main(argv=None):
    """Command line: print the merged config of the given sources."""
    parser = argparse.ArgumentParser(
        description='Render kolla-ansible config sources and merge them '
                    'like merge_configs (lowest priority first).')
    parser.add_argument('sources', nargs='+')
    parser.add_argument('--vars', action='append', default=[],
                        help='YAML variables file (repeatable)')
    parser.add_argument('--pci-config',
                        help='multimodal-virt pci config --format json')
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render_and_merge(
            args.sources, load_variables(args.vars, args.pci_config)))
    except (OSError, exception.MultimodalVirtError) as err:
        print('error: %s' % err, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
