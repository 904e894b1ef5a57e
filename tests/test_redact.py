from tmt_ops.redact import Redactor, secret_values


def test_secret_named_variables_and_url_passwords_are_masked():
    env = {"OANDA_API_KEY": "abc123secretvalue", "DATABASE_URL": "postgresql://trader:hunter22@db:5432/x",
           "PATH": "/usr/bin", "DEBUG": "1"}
    redact = Redactor(secret_values(env))
    text = "key=abc123secretvalue url=postgresql://trader:hunter22@db:5432/x path=/usr/bin"
    out = redact(text)
    assert "abc123secretvalue" not in out and "hunter22" not in out
    assert "postgresql://trader:***@db:5432/x" in out and "/usr/bin" in out


def test_url_passwords_are_masked_even_when_not_in_the_environment():
    assert Redactor()("redis://:s3cr3tpass@cache:6379") == "redis://:***@cache:6379"


def test_secrets_written_into_the_registry_are_masked_too(tmp_path):
    from tmt_ops.registry import load_registry
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  api: {group: core, port: 9100, command: [python], "
                    "env: {BROKER_TOKEN: tok-written-in-registry, DB: 'postgresql://u:pw-in-url@db/x'}}\n")
    redact = Redactor.for_registry(load_registry(path, environ={}))
    assert redact("tok-written-in-registry pw-in-url") == "*** ***"
