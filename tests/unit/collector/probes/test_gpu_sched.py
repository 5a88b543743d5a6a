"""Pure logic of the gpu_sched probe: generations, offsets, its spec."""

import fixtures

from multimodal_virt.collector.probes import gpu_sched
from tests import base


class TestGenerations(base.TestCase):

    def test_split_needs_the_three_events_of_one_generation(self):
        old = ['gpu_scheduler:' + e for e in gpu_sched.GENERATIONS[0]]
        new = ['gpu_scheduler:' + e for e in gpu_sched.GENERATIONS[1]]
        self.assertTrue(gpu_sched.observed_split(old))
        self.assertTrue(gpu_sched.observed_split(new))
        self.assertFalse(gpu_sched.observed_split(old[:2]))
        # Queued under one name and done under the other: no pair.
        self.assertFalse(gpu_sched.observed_split(old[:2] + new[2:]))
        self.assertFalse(gpu_sched.observed_split(()))

    def test_every_production_program_is_optional_raw_tp(self):
        events = {p.tracepoint for p in gpu_sched.SPEC.programs}
        self.assertEqual(set(gpu_sched.GENERATIONS[0])
                         | set(gpu_sched.GENERATIONS[1]), events)
        for program in gpu_sched.SPEC.programs:
            self.assertEqual('raw_tp', program.kind)
            self.assertFalse(program.required)
            self.assertTrue(program.attach)
        for program in gpu_sched.SYNTH_SPEC.programs:
            self.assertFalse(program.attach)


class TestModuleOffsets(base.TestCase):

    def test_offsets_found_are_settings(self):
        found = gpu_sched.module_offsets(
            lambda struct, member: {('drm_sched_job', 's_fence'): 48,
                                    ('drm_sched_fence', 'parent'): 160}
            .get((struct, member)))
        self.assertEqual({'targ_job_s_fence_off': 48,
                          'targ_sfence_parent_off': 160}, found)

    def test_missing_types_set_nothing(self):
        self.assertEqual({}, gpu_sched.module_offsets(lambda s, m: None))

    def test_incomplete_offsets_load_no_program(self):
        probe = gpu_sched.GpuSchedProbe(
            self.conf, offsets={'targ_job_s_fence_off': 48})
        loaded = []

        class Backend(object):
            name = 'fake'

            def load(self, spec, rodata, max_entries):
                loaded.append(spec)
                raise RuntimeError('stop here')

        self.useFixture(fixtures.MockPatch(
            'multimodal_virt.collector.bpf.backend.get_backend',
            return_value=Backend()))
        self.assertRaises(RuntimeError, probe.start)
        self.assertEqual((), loaded[0].programs)
