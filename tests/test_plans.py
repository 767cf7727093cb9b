"""Plans as values: what each target plans, compared by value, and the one executor that runs them."""
from __future__ import annotations

import io

import pytest
from fixtures.plans import planned_steps, ran_steps

from dockyard.core.versions import Release, ReleaseVersion
from dockyard.eb.deploy import EbDeploy, WaitPolicy, deploy_plan, rollback_plan, setenv_plan, swap_plan
from dockyard.plan import ApiCall, Output, Plan, RemoteScript, Step, WithArguments, display, run_plan
from dockyard.runner import Masker

# --- the executor ----------------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, name: str, calls: list, returns: dict | None = None) -> None:
        self.name, self.calls, self.returns = name, calls, returns or {}

    def __getattr__(self, operation: str):
        def call(**params):
            self.calls.append((self.name, operation, params))
            return self.returns.get(operation)
        return call


def test_the_executor_passes_a_named_output_to_the_steps_that_reference_it():
    calls: list = []
    plan = Plan("t", (
        Step("register", instruction=ApiCall.of("ecs", "register", output="revision", family="web")),
        Step("update", instruction=ApiCall.of("ecs", "update_service", arn=Output("revision"))),
    ))
    run = run_plan(plan, {"ecs": Recorder("ecs", calls, {"register": "arn:web:7"})}, stream=io.StringIO())
    assert calls == [("ecs", "register", {"family": "web"}), ("ecs", "update_service", {"arn": "arn:web:7"})]
    assert run.outputs == {"revision": "arn:web:7"}
    assert [(t.step, t.ok) for t in run.timings] == [("register", True), ("update", True)]


def test_the_display_executor_prints_every_step_with_its_call_and_masks_secrets():
    plan = Plan("t", (
        Step("write the secret", instruction=ApiCall.of("ssm", "put_secure", secret=("value",), name="/app/KEY",
                                                       value="hunter22")),
        Step("upload", instruction=ApiCall.of("s3", "upload", data=b"x" * 10)),
        Step("on the host", instruction=RemoteScript("web1", 'echo "$1"', ("token-abcd",))),
    ))
    out = io.StringIO()
    display(plan, mask=Masker(["token-abcd"]), stream=out)
    text = out.getvalue()
    assert "1. write the secret" in text and "ssm.put_secure(name='/app/KEY', value=********)" in text
    assert "hunter22" not in text and "token-abcd" not in text
    assert "s3.upload(data=<10 bytes>)" in text and "(dry run: nothing was changed)" in text


def test_the_run_prints_the_same_steps_the_display_prints():
    calls: list = []
    plan = Plan("t", (Step("one", instruction=ApiCall.of("x", "a")), Step("two", instruction=ApiCall.of("x", "b"))),
                notes=("a decision",))
    shown, ran = io.StringIO(), io.StringIO()
    display(plan, stream=shown)
    run_plan(plan, {"x": Recorder("x", calls)}, stream=ran)
    assert planned_steps(shown.getvalue()) == ran_steps(ran.getvalue()) == ["one", "two"]
    assert "a decision" in shown.getvalue() and "a decision" in ran.getvalue()


def test_a_performer_gets_its_reporting_arguments_outside_the_plan():
    calls: list = []
    step = Step("lock", instruction=ApiCall.of("lock", "acquire", version="1.0.0"))
    run_plan(Plan("t", (step,)), {"lock": WithArguments(Recorder("lock", calls), acquire={"say": print})}, stream=io.StringIO())
    assert calls == [("lock", "acquire", {"version": "1.0.0", "say": print})]


def test_a_failing_step_stops_the_plan_and_keeps_its_timing():
    class Boom:
        def fail(self):
            raise RuntimeError("no")

    calls: list = []
    plan = Plan("t", (Step("bad", instruction=ApiCall.of("b", "fail")), Step("never", instruction=ApiCall.of("x", "a"))))
    with pytest.raises(RuntimeError):
        run_plan(plan, {"b": Boom(), "x": Recorder("x", calls)}, stream=io.StringIO())
    assert calls == []


# --- Elastic Beanstalk -----------------------------------------------------------------------------------------------

RELEASE = Release(ReleaseVersion.parse("1.2.0"), "v1.2.0", "abcdef0123456789", "the release")
POLICY = WaitPolicy(("Green",), 30, 900, 5)


def eb_deploy(**changes) -> EbDeploy:
    values = dict(application="shop", environment="shop-prod", release=RELEASE, bundle_zip=b"PK-zip",  # noqa: C408
                  bundle_digest="d" * 64, bucket="bundles", key="dockyard/shop/1.2.0-abcdef0.zip", policy=POLICY,
                  previous_label="1.1.0-1234567", reuse_object=False, reuse_version=False,
                  lock_where="s3://bundles/dockyard/shop/locks/prod.json", lock_environment="prod")
    return EbDeploy(**{**values, **changes})


def test_eb_plans_lock_upload_version_update_and_wait_with_the_update_s_request_id():
    plan = deploy_plan(eb_deploy())
    label = RELEASE.label
    assert [s.instruction for s in plan.steps] == [
        ApiCall.of("lock", "acquire", version="1.2.0", force_unlock=False),
        ApiCall.of("eb", "upload", bucket="bundles", key="dockyard/shop/1.2.0-abcdef0.zip", data=b"PK-zip",
                   sha256="d" * 64),
        ApiCall.of("eb", "create_version", application="shop", label=label, bucket="bundles",
                   key="dockyard/shop/1.2.0-abcdef0.zip", description="the release"),
        ApiCall.of("eb", "update_environment", output="request_id", application="shop", name="shop-prod",
                   label=label),
        ApiCall.of("wait", "until_live", output="outcome", application="shop", environment="shop-prod", label=label,
                   request_id=Output("request_id"), previous_label="1.1.0-1234567", no_rollback=False),
    ]
    assert plan.notes == ()


def test_eb_plans_no_upload_and_no_version_when_the_label_already_holds_this_bundle():
    plan = deploy_plan(eb_deploy(reuse_object=True, reuse_version=True))
    assert [s.instruction.operation for s in plan.steps] == ["acquire", "update_environment", "until_live"]
    assert any("not uploading it again" in n for n in plan.notes) and any("reusing it" in n for n in plan.notes)


def test_eb_plans_no_wait_with_no_wait_and_says_no_rollback():
    assert [s.instruction.operation for s in deploy_plan(eb_deploy(no_wait=True)).steps][-1] == "update_environment"
    waited = deploy_plan(eb_deploy(no_rollback=True)).steps[-1]
    assert waited.instruction.arguments["no_rollback"] is True and "roll back" not in waited.description


def test_eb_rollback_plan_waits_for_the_request_it_made():
    plan = rollback_plan(application="shop", environment="shop-prod", lock_environment="prod", lock_where="s3://x",
                         current="1.2.0-abcdef0", label="1.1.0-1234567")
    assert [s.instruction for s in plan.steps] == [
        ApiCall.of("lock", "acquire", version="1.1.0-1234567", action="rollback"),
        ApiCall.of("eb", "update_environment", output="request_id", application="shop", name="shop-prod",
                   label="1.1.0-1234567"),
        ApiCall.of("wait", "rolled_to", output="outcome", application="shop", environment="shop-prod",
                   label="1.1.0-1234567", request_id=Output("request_id")),
    ]


def test_eb_setenv_plan_stores_secrets_then_updates_and_waits_and_never_shows_a_value():
    from dockyard.eb.secrets import SecretsChange, SecretWriteStep

    arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/prod/KEY"
    secret_option = {"Namespace": "aws:elasticbeanstalk:application:environmentsecrets", "OptionName": "KEY",
                     "Value": arn}
    secrets = SecretsChange("ssm", writes=(SecretWriteStep("KEY", "/shop/prod/KEY", arn, "s3cr3t-value",
                                                           exists=False),),
                            option_settings=(secret_option,), diff=(f"+ KEY (secret) -> {arn}",),
                            refs={"KEY": ("/shop/prod/KEY", arn, "")})
    settings = ({"Namespace": "ns", "OptionName": "HOST", "Value": "only-here.example.org"},)
    plan = setenv_plan(application="shop", environment="shop-prod", diff=("~ HOST=******** (was ********)",),
                       option_settings=settings, options_to_remove=({"Namespace": "ns", "OptionName": "OLD"},),
                       label="1.2.0-abcdef0", secrets=secrets)
    assert [s.instruction for s in plan.steps] == [
        ApiCall.of("secrets", "put", output="secret:KEY", secret=("value",), key="KEY", name="/shop/prod/KEY",
                   value="s3cr3t-value", arn=arn),
        ApiCall.of("secrets", "update_environment", output="request_id", secret=("option_settings",),
                   application="shop", name="shop-prod", option_settings=settings + (secret_option,),
                   options_to_remove=({"Namespace": "ns", "OptionName": "OLD"},)),
        ApiCall.of("wait", "settled", output="outcome", application="shop", environment="shop-prod",
                   label="1.2.0-abcdef0", request_id=Output("request_id")),
    ]
    shown = io.StringIO()
    display(plan, stream=shown)
    assert "s3cr3t-value" not in shown.getvalue() and "only-here.example.org" not in shown.getvalue()
    assert "~ HOST=******** (was ********)" in shown.getvalue()
    assert f"+ KEY (secret) -> {arn}" in shown.getvalue()  # the ARN is shown, never the value


def test_eb_swap_plan_deploys_the_idle_twin_smoke_tests_then_swaps():
    plan = swap_plan(application="shop", live="shop-blue", idle="shop-green", live_cname="shop.example.com",
                     version="1.2.0", smoke_url="http://green/health/", timeout=60)
    assert [s.instruction for s in plan.steps] == [
        ApiCall.of("service", "deploy", version="1.2.0", environment="shop-green", timeout=60, no_rollback=True,
                   action="deploy-idle"),
        ApiCall.of("smoke", "check", url="http://green/health/", idle="shop-green", live="shop-blue"),
        ApiCall.of("eb", "swap_cnames", source="shop-green", destination="shop-blue"),
        ApiCall.of("swap", "until_swapped", application="shop", now_live="shop-green", cname="shop.example.com"),
    ]


def test_a_failed_smoke_test_stops_the_swap_before_the_cnames_move():
    calls: list = []
    plan = swap_plan(application="shop", live="shop-blue", idle="shop-green", live_cname="c", version="1.2.0",
                     smoke_url="http://green/", timeout=60)
    from dockyard.eb.service import SmokeTest
    from dockyard.errors import DeployFailed

    with pytest.raises(DeployFailed, match="CNAMEs not swapped, shop-blue still serves"):
        run_plan(plan, {"service": Recorder("service", calls), "smoke": SmokeTest(lambda url: False),
                        "eb": Recorder("eb", calls), "swap": Recorder("swap", calls)}, stream=io.StringIO())
    assert [c[:2] for c in calls] == [("service", "deploy")]


# --- staging over SSH ------------------------------------------------------------------------------------------------


def staging_plan(**flags):
    from test_staging_units import app, session_for, target_of

    from dockyard.staging.deploy import HostState, plan_host

    target = target_of({"hosts": ["a@h"]})
    state = HostState((app("v1", "running", "1"),), live="v1", upstream_text="x")
    return plan_host(target, session_for(), state, "v2", **flags)


def test_staging_plans_no_login_without_registry_credentials_and_no_upload_without_an_env_file():
    bare = staging_plan()
    assert not bare.login and not bare.env_file
    assert not any("log in" in line or "env file" in line for line in bare.lines())
    full = staging_plan(login=True, env_file=True)
    assert "  log in to the registry (password on stdin)" in full.lines()
    assert "  upload the env file (mode 0600)" in full.lines()
    # a rollback pulls nothing: neither, whatever the deploy has
    from test_staging_units import app, session_for, target_of

    from dockyard.staging.deploy import HostState, plan_host

    state = HostState((app("v2", "running", "2"), app("v1", "exited", "1")), live="v2", upstream_text="x")
    back = plan_host(target_of({"hosts": ["a@h"]}), session_for(), state, "v1", rollback=True, login=True,
                     env_file=True)
    assert not back.login and not back.env_file


def test_staging_plan_holds_each_batch_s_host_plans_between_the_lock_and_its_release():
    from test_staging_units import session_for

    from dockyard.staging.deploy import deploy_plan as staging_deploy_plan

    session = session_for()
    host_plan = staging_plan(env_file=True)
    plan = staging_deploy_plan("staging", "deploy", "v2", [session], {session.name: host_plan}, batch_size=1,
                               lock_wait=5)
    assert [s.instruction for s in plan.steps] == [
        ApiCall.of("lock", "acquire", version="v2", action="deploy", force_unlock=False, wait=5),
        ApiCall.of("hosts", "deploy", plans=(host_plan,)),
        ApiCall.of("lock", "release"),
    ]
    assert plan.steps[1].details == tuple(host_plan.lines())


def test_staging_refuses_a_host_whose_state_moved_while_the_deploy_waited_for_the_lock():
    from types import SimpleNamespace

    from test_staging_units import app, session_for, target_of

    from dockyard.errors import Refused
    from dockyard.staging.deploy import HostState, Registration
    from dockyard.staging.service import HostBatches

    session = session_for()
    session.host = object()
    planned = staging_plan()
    moved = HostState((app("v3", "running", "3"),), live="v3", upstream_text="x")  # another deploy went first
    session.state = lambda: moved
    service = SimpleNamespace(target=target_of({"hosts": ["a@h"]}), say=print, sleep=lambda s: None)
    batches = HostBatches(service, {session.name: session}, Registration())
    with pytest.raises(Refused, match="changed while this deploy waited for the lock; nothing was done"):
        batches.deploy((planned,))
    assert batches.outcomes[session.name].startswith("FAILED")
