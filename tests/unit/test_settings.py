"""Settings read from the environment."""

from crm_pipeline.settings import reload_settings


def test_the_sandbox_url_follows_its_port_unless_set(monkeypatch):
    """A second sandbox on another port (a second checkout, a trial) needs only
    CRM_SANDBOX_PORT: the client looked for the sandbox at 8765 and never found it."""
    monkeypatch.delenv("CRM_SANDBOX_URL", raising=False)
    monkeypatch.setenv("CRM_SANDBOX_PORT", "18765")
    try:
        assert reload_settings().sandbox_url == "http://127.0.0.1:18765"
        monkeypatch.setenv("CRM_SANDBOX_URL", "http://sandbox.internal:9000/")
        assert reload_settings().sandbox_url == "http://sandbox.internal:9000"
    finally:
        monkeypatch.undo()
        reload_settings()
