"""Packaging: declared requirements, extras, lower bounds, config generator.

Reads the checkout's own files (requirements.txt, setup.cfg,
lower-constraints.txt, the generator config) and the modules of the
package, and maps imports to distributions with the installed metadata of
this environment (which has every extra installed).
"""

import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys

import fixtures
import yaml

from tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PACKAGE = os.path.join(TOP, 'multimodal_virt')
# Imported but not installed from PyPI, with the reason.
NOT_FROM_PYPI = {
    'nova': 'the package runs inside Nova\'s environment',
    'bcc': 'Debian python3-bpfcc, used only by the bcc probe backend',
}
PLOTTING = {'matplotlib'}


def _name(requirement):
    """Normalised distribution name of a requirement line."""
    name = re.split(r'[\s\[<>=!~;]', requirement.strip(), maxsplit=1)[0]
    return re.sub(r'[-_.]+', '-', name).lower()


def _lines(text):
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith('#')]


def _requirements():
    with open(os.path.join(TOP, 'requirements.txt')) as handle:
        return _lines(handle.read())


def _extras():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(TOP, 'setup.cfg'))
    return {extra: _lines(value)
            for extra, value in parser['extras'].items()}


def _imports():
    """``{top-level module: [files]}`` imported by the package."""
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            with open(path) as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split('.')[0]
                    if (top in sys.stdlib_module_names
                            or top == 'multimodal_virt'):
                        continue
                    found.setdefault(top, []).append(
                        os.path.relpath(path, TOP))
    return found


class RequirementsTest(base.TestCase):

    def test_every_import_is_declared(self):
        declared = {_name(r) for r in _requirements()}
        for lines in _extras().values():
            declared.update(_name(r) for r in lines)
        distributions = importlib.metadata.packages_distributions()
        undeclared = {}
        for module, files in sorted(_imports().items()):
            if module in NOT_FROM_PYPI:
                continue
            dists = {_name(d) for d in distributions.get(module, [])}
            self.assertTrue(dists, 'no installed distribution provides %s '
                            '(imported by %s)' % (module, files[0]))
            if not dists & declared:
                undeclared[module] = files[0]
        self.assertEqual({}, undeclared,
                         'imported, but in neither requirements.txt nor '
                         'an extra of setup.cfg')

    def test_base_install_has_no_optional_parts(self):
        base_names = {_name(r) for r in _requirements()}
        for extra in ('matplotlib', 'python-novaclient', 'libvirt-python',
                      'jinja2', 'oslo-service'):
            self.assertNotIn(extra, base_names)
        extras = _extras()
        self.assertEqual({'plotting', 'nova-client', 'collector'},
                         set(extras))
        self.assertEqual(PLOTTING, {_name(r) for r in extras['plotting']})
        self.assertIn('libvirt-python',
                      {_name(r) for r in extras['collector']})
        self.assertIn('python-novaclient',
                      {_name(r) for r in extras['nova-client']})

    def test_lower_constraints_pin_every_lower_bound(self):
        with open(os.path.join(TOP, 'lower-constraints.txt')) as handle:
            pins = dict(line.split('==') for line in _lines(handle.read()))
        pins = {_name(k): v for k, v in pins.items()}
        bounds = {}
        for line in _requirements() + [
                r for lines in _extras().values() for r in lines]:
            match = re.search(r'>=\s*([0-9][0-9.]*)', line)
            self.assertIsNotNone(match, 'no lower bound in %r' % line)
            bounds[_name(line)] = match.group(1)
        self.assertEqual(bounds, pins)


class ConfigGeneratorTest(base.TestCase):

    def test_only_our_namespaces_and_read_options(self):
        path = os.path.join(TOP, 'etc', 'multimodal-virt',
                            'multimodal-virt-config-generator.conf')
        parser = configparser.ConfigParser(strict=False)
        with open(path) as handle:
            namespaces = [line.split('=', 1)[1].strip() for line in handle
                          if line.startswith('namespace')]
        # oslo.log: the collector reads its [DEFAULT] logging options.
        self.assertEqual(['multimodal_virt', 'oslo.log'], namespaces)
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'sample.conf')
        generator = os.path.join(os.path.dirname(sys.executable),
                                 'oslo-config-generator')
        subprocess.run([generator, '--config-file', path, '--output-file',
                        out], cwd=TOP, check=True, capture_output=True)
        parser.read(out)
        self.assertNotIn('cache', parser.sections())
        for section in parser.sections():
            self.assertTrue(section.startswith('multimodal_virt_'), section)


class ProjectFilesTest(base.TestCase):

    def test_license_is_apache_2(self):
        with open(os.path.join(TOP, 'LICENSE')) as handle:
            text = handle.read()
        self.assertIn('Apache License', text)
        self.assertIn('Version 2.0, January 2004', text)
        self.assertIn('END OF TERMS AND CONDITIONS', text)
        parser = configparser.ConfigParser()
        parser.read(os.path.join(TOP, 'setup.cfg'))
        self.assertEqual('Apache-2.0', parser['metadata']['license'])

    def test_release_notes_are_reno_notes(self):
        notes = os.path.join(TOP, 'releasenotes', 'notes')
        sections = {'prelude', 'features', 'issues', 'upgrade',
                    'deprecations', 'critical', 'security', 'fixes',
                    'other'}
        names = sorted(os.listdir(notes))
        self.assertGreaterEqual(len(names), 9)
        for name in names:
            self.assertRegex(name, r'^[a-z0-9-]+-[0-9a-f]{16}\.yaml$')
            with open(os.path.join(notes, name)) as handle:
                note = yaml.safe_load(handle)
            self.assertTrue(set(note) <= sections, name)
            for key, value in note.items():
                if key != 'prelude':
                    self.assertIsInstance(value, list, name)
                    self.assertTrue(all(isinstance(v, str) and v.strip()
                                        for v in value), name)

    def test_bindep_lists_what_setup_host_installs(self):
        with open(os.path.join(TOP, 'bindep.txt')) as handle:
            bindep = {line.split()[0] for line in _lines(handle.read())}
        with open(os.path.join(TOP, 'tools', 'setup-host.sh')) as handle:
            script = handle.read()
        listed = re.search(r'APT_PACKAGES=\((.*?)\)', script, re.S).group(1)
        self.assertEqual(set(), set(listed.split()) - bindep)

    def test_pre_commit_runs_hacking(self):
        with open(os.path.join(TOP, '.pre-commit-config.yaml')) as handle:
            config = yaml.safe_load(handle)
        hooks = {hook['id'] for repo in config['repos']
                 for hook in repo['hooks']}
        self.assertIn('hacking', hooks)
        parser = configparser.ConfigParser()
        parser.read(os.path.join(TOP, 'tox.ini'))
        self.assertIn('hacking', parser['testenv:pep8']['deps'])
