"""Shape of the BPF library: licences that agree, no import circle."""

import ast
import os
import pathlib
import re

import multimodal_virt
from multimodal_virt.collector.bpf import build
from tests import base

SPDX_RE = re.compile(r'SPDX-License-Identifier:\s*([^*\n]+?)\s*(\*/)?$')
LICENSE_RE = re.compile(r'char LICENSE\[\] SEC\("license"\) = "([^"]+)";')
#: SPDX expression -> the license strings the kernel reads that say the
#: same (the kernel only loads tracing programs under a GPL-compatible
#: string; bcc always loads its programs as "GPL").
AGREEING = {
    'GPL-2.0-only': {'GPL v2', 'GPL'},
    'GPL-2.0-or-later': {'GPL'},
    'GPL-2.0-only OR BSD-2-Clause': {'Dual BSD/GPL'},
    '(LGPL-2.1 OR BSD-2-Clause)': {'Dual BSD/GPL'},
    'GPL-2.0-only OR MIT': {'Dual MIT/GPL'},
}


def _spdx(text):
    match = SPDX_RE.search(text.splitlines()[0])
    return match.group(1).strip() if match else None


class TestLicences(base.TestCase):

    def test_every_bpf_source_has_a_gpl_compatible_spdx_line(self):
        names = sorted(p.name for p in build.SOURCE_DIR.iterdir()
                       if p.name.endswith(('.bpf.c', '.bcc.c', '.h')))
        self.assertTrue(names)
        for name in names:
            text = (build.SOURCE_DIR / name).read_text()
            self.assertIn(_spdx(text), AGREEING, name)

    def test_license_strings_agree_with_spdx(self):
        for name in build.sources():
            text = (build.SOURCE_DIR / (name + '.bpf.c')).read_text()
            licences = LICENSE_RE.findall(text)
            self.assertEqual(1, len(licences), name)
            self.assertIn(licences[0], AGREEING[_spdx(text)], name)


def _imports(path, package):
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(package):
                for alias in node.names:
                    found.add('%s.%s' % (node.module, alias.name))
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names
                         if a.name.startswith(package))
    return found


class TestNoImportCircle(base.TestCase):

    def test_collector_modules_form_no_cycle(self):
        root = pathlib.Path(multimodal_virt.__file__).parent
        modules = {}
        for path in (root / 'collector').rglob('*.py'):
            name = '.'.join(('multimodal_virt',) + path.relative_to(
                root).with_suffix('').parts)
            modules[name.replace('.__init__', '')] = path
        graph = {name: {dep for dep in _imports(path, 'multimodal_virt')
                        if dep in modules and dep != name}
                 for name, path in modules.items()}
        visiting, done = set(), set()

        def visit(name, trail):
            if name in done:
                return
            self.assertNotIn(name, visiting,
                             'import circle: %s' % ' -> '.join(trail))
            visiting.add(name)
            for dep in sorted(graph[name]):
                visit(dep, trail + [dep])
            visiting.discard(name)
            done.add(name)

        for name in sorted(graph):
            visit(name, [name])

    def test_the_bpf_library_has_no_command_line(self):
        bpf_dir = pathlib.Path(build.__file__).parent
        for path in bpf_dir.glob('*.py'):
            text = path.read_text()
            self.assertNotIn('argparse', text, path.name)
            self.assertNotIn("__main__", text, path.name)
        self.assertTrue(os.path.exists(os.path.join(
            pathlib.Path(multimodal_virt.__file__).parent, 'cmd',
            'collector.py')))
