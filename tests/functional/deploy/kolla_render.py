"""Render and merge kolla-ansible config sources with kolla-ansible's code.

kolla-ansible's ``merge_configs`` action plugin renders every source with
Ansible's templar (the host's variables) and merges them: a key set in a
later source replaces every value of that key from earlier ones; a key
repeated inside one source keeps every value. Here the plugin's own
``ActionModule.read_config`` and ``OverrideConfigParser`` (from the
kolla-ansible package, a test requirement) run with a real
``ansible.template.Templar``; only Ansible's task machinery around them
(connection, copy to the host) is left out::

    python -m tests.functional.deploy.kolla_render \\
        --vars deploy/kolla/globals-multimodal-virt.yml \\
        --pci-config <(multimodal-virt pci config --format json) \\
        nova.conf deploy/kolla/config/nova/nova-compute.conf
"""

import argparse
import collections
import glob
import importlib.util
import io
import json
import os
import sys

from oslo_config import iniparser
import yaml

from multimodal_virt import exception

_ORPHAN = None  # key of options that appear before any section header


def merge_configs_module():
    """kolla-ansible's ``merge_configs`` action plugin, imported.

    :raises MultimodalVirtError: when kolla-ansible is not installed.
    """
    paths = glob.glob(os.path.join(
        sys.prefix, 'share', 'kolla-ansible', 'ansible', 'action_plugins',
        'merge_configs.py'))
    if not paths:
        raise exception.MultimodalVirtError(
            'kolla-ansible is not installed in %s (pip install '
            'kolla-ansible; it is a test requirement)' % sys.prefix)
    spec = importlib.util.spec_from_file_location('kolla_merge_configs',
                                                  paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trusted(value):
    """Mark strings as templates, as Ansible does for loaded variables.

    (Variables from inventory, group_vars and role defaults.)
    """
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: _trusted(item) for key, item in value.items()}
    return value


def _templar(variables):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    return loader, Templar(loader=loader, variables=_trusted(variables))


def template_value(value, variables):
    """Template one value (e.g. a task argument) with ``variables``."""
    _, templar = _templar(variables)
    return templar.template(_trusted(value))


def render_and_merge(sources, variables):
    """Render and merge ``sources`` (lowest priority first) for one host.

    Missing sources are skipped, as merge_configs does.

    :param variables: the host's variables (inventory_hostname, groups,
        hostvars, ...).
    :returns: the merged INI text merge_configs would write.
    """
    module = merge_configs_module()
    loader, templar = _templar(variables)
    action = module.ActionModule.__new__(module.ActionModule)
    action._loader = loader
    action._templar = templar
    config = module.OverrideConfigParser()
    for source in sources:
        action.read_config(source, config)
    out = io.StringIO()
    config.write(out)
    return out.getvalue()


def render(path, variables):
    """Render one template with Ansible's templar (the template module)."""
    from ansible.template import trust_as_template

    _, templar = _templar(variables)
    with open(path) as handle:
        return templar.template(trust_as_template(handle.read()),
                                overrides=dict(lstrip_blocks=True))


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


def main(argv=None):
    """Command line: print the merged config of the given sources."""
    parser = argparse.ArgumentParser(
        description='Render kolla-ansible config sources and merge them '
                    'with merge_configs (lowest priority first).')
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
