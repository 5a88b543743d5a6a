"""Bottleneck analysis of host samples: pure logic, no I/O.

``bottleneck`` finds the dominating path of a host, ``recommend`` turns it
into concrete actions, ``report`` builds the status rows (score and rank as
the weigher gives them) and ``ranking`` explains a scheduling decision.
"""
