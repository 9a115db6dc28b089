"""Whether the control loop uses RTC: the policy object says so (`EdgePolicy.supports_rtc`: a flow-matching
policy loaded with rtc != "off"), never its type name or runtime kind. A regression test: the loop used to
read RTC support off `policy.rtc` (FlowMatchingEdgePolicy's RTCOptions, always set) and a list of policy
names compared with the manifest's runtime kind ("flow"), so a flow policy loaded with rtc="off" got RTC."""

from __future__ import annotations

import pytest
import tiny_zoo
from control_fakes import STATE_SPEC

from lerobot_edge import load_policy
from lerobot_edge.runtime.control import ControlLoop, SimRobot, supports_rtc


def _loop(policy) -> ControlLoop:
    return ControlLoop(policy, SimRobot(STATE_SPEC, 2), fps=20, mode="async")   # built, never started


@pytest.mark.parametrize("mode, expect", [("off", False), ("guided", True)])
def test_a_flow_policy_supports_rtc_unless_loaded_with_rtc_off(mode, expect, request):
    policy = load_policy(tiny_zoo.tiny_bundle("smolvla", request), rtc=mode)
    assert policy.rtc_mode == mode and policy.supports_rtc is expect and supports_rtc(policy) is expect
    loop = _loop(policy)
    assert loop.rtc is expect and loop.merge == ("rtc" if expect else "replace")
    assert loop.config()["rtc"] is expect


def test_act_does_not_support_rtc(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    assert policy.supports_rtc is False and _loop(policy).rtc is False


def test_duck_typed_policies_say_so_with_an_attribute():
    """Objects that are not EdgePolicies: their `supports_rtc`, else False (no name or `rtc` guessing)."""
    class Bare:
        pass

    class Flagged:
        supports_rtc = True

    class LooksLikeFlow:   # what the old name-based check took for a flow-matching policy
        rtc = object()
        manifest = {"runtime": {"kind": "pi0"}}

    assert (supports_rtc(Bare()), supports_rtc(Flagged()), supports_rtc(LooksLikeFlow())) == (False, True, False)
