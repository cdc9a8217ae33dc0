"""The scripted fake server itself works (plain httpx, no litellm)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fakellm import JSON_SCHEMA_REJECTION_MESSAGE, Call, Drop, Error, FakeLLM, Reply


def chat(base_url: str, content: str = "hello there", timeout: float = 5.0, **extra) -> httpx.Response:
    body = {"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(f"{base_url}/chat/completions", json=body, timeout=timeout,
                      headers={"Authorization": "Bearer sk-test"})


def test_content_reply_has_real_usage_and_echoes_model(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply('{"score": 4}', finish_reason="length"))
    r = chat(fake_llm.base_url, content="x" * 40)
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "test-model"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": '{"score": 4}'}
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}


def test_callable_step_sees_the_request(fake_llm: FakeLLM) -> None:
    fake_llm.script(Call(lambda body: body["messages"][-1]["content"].upper()), "plain string step")
    assert chat(fake_llm.base_url, "quote me").json()["choices"][0]["message"]["content"] == "QUOTE ME"
    assert chat(fake_llm.base_url).json()["choices"][0]["message"]["content"] == "plain string step"
    # The last step repeats once the queue is empty.
    assert chat(fake_llm.base_url).json()["choices"][0]["message"]["content"] == "plain string step"


def test_script_exhausted_without_repeat() -> None:
    with FakeLLM(Reply("once"), repeat_last=False) as server:
        assert chat(server.base_url).status_code == 200
        r = chat(server.base_url)
        assert r.status_code == 500
        assert "exhausted" in r.json()["error"]["message"]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_error_in_openai_shape_with_headers(fake_llm: FakeLLM, status: int) -> None:
    fake_llm.script(Error(status, headers={"Retry-After": "2"}), Reply("after"))
    r = chat(fake_llm.base_url)
    assert r.status_code == status
    assert r.headers["retry-after"] == "2"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if status == 404:
        assert "test-model" in err["message"] and err["code"] == "model_not_found"
    assert chat(fake_llm.base_url).json()["choices"][0]["message"]["content"] == "after"


def test_delay_trips_a_client_timeout_then_answers(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("slow", delay=1.0), Reply("fast"))
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        chat(fake_llm.base_url, timeout=0.2)
    assert time.monotonic() - t0 < 0.9
    assert chat(fake_llm.base_url).json()["choices"][0]["message"]["content"] == "fast"


def test_reject_json_schema_does_not_consume_a_step() -> None:
    schema_rf = {"type": "json_schema", "json_schema": {"name": "j", "schema": {"type": "object"}}}
    with FakeLLM(Reply("first"), Reply("second"), reject_json_schema=True) as server:
        r = chat(server.base_url, response_format=schema_rf)
        assert r.status_code == 400
        assert r.json()["error"]["message"] == JSON_SCHEMA_REJECTION_MESSAGE
        assert "json_object" in r.json()["error"]["message"]
        ok = chat(server.base_url, response_format={"type": "json_object"})
        assert ok.json()["choices"][0]["message"]["content"] == "first"
        assert chat(server.base_url).json()["choices"][0]["message"]["content"] == "second"
    with FakeLLM(reject_json_schema=True, reject_json_schema_status=500) as server:
        r = chat(server.base_url, response_format=schema_rf)
        assert r.status_code == 500 and r.json()["error"]["type"] == "internal_server_error"


def test_requests_are_recorded(fake_llm: FakeLLM) -> None:
    chat(fake_llm.base_url, "first prompt", temperature=0)
    httpx.get(f"{fake_llm.base_url}/models", timeout=5)
    reqs = fake_llm.requests
    assert [(r.method, r.path) for r in reqs] == [("POST", "/v1/chat/completions"), ("GET", "/v1/models")]
    assert reqs[0].body["messages"][0]["content"] == "first prompt"
    assert reqs[0].body["temperature"] == 0
    assert reqs[0].header("authorization") == "Bearer sk-test"
    assert json.loads(reqs[0].raw) == reqs[0].body
    assert len(fake_llm.chat_requests) == 1
    fake_llm.clear()
    assert fake_llm.requests == []


def test_models_endpoint(fake_llm: FakeLLM) -> None:
    data = httpx.get(f"{fake_llm.base_url}/models", timeout=5).json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["test-model"]


@pytest.mark.parametrize("reset", [False, True])
def test_drop_connection(fake_llm: FakeLLM, reset: bool) -> None:
    fake_llm.script(Drop(reset=reset), Reply("back"))
    with pytest.raises(httpx.TransportError):
        chat(fake_llm.base_url)
    assert chat(fake_llm.base_url).json()["choices"][0]["message"]["content"] == "back"


def test_api_key_check() -> None:
    with FakeLLM(api_key="right") as server:
        assert chat(server.base_url).status_code == 401  # chat() sends "sk-test"


def test_stream_request_gets_sse(fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply("streamed"))
    r = chat(fake_llm.base_url, stream=True)
    assert r.headers["content-type"] == "text/event-stream"
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "streamed"
    assert json.loads(events[-2])["usage"]["completion_tokens"] == 2


def test_concurrent_requests_each_get_one_step(fake_llm: FakeLLM) -> None:
    fake_llm.script(*[Reply(str(i), delay=0.2) for i in range(20)])
    results: list[str] = []
    lock = threading.Lock()

    client = httpx.Client(limits=httpx.Limits(max_connections=50), timeout=10)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}

    def worker() -> None:
        r = client.post(f"{fake_llm.base_url}/chat/completions", json=body)
        with lock:
            results.append(r.json()["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=worker) for _ in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    client.close()
    assert sorted(results, key=int) == [str(i) for i in range(20)]
    assert elapsed < 2.0  # served in parallel (20 x 0.2 s one after another would be 4 s)
    assert len(fake_llm.chat_requests) == 20


def test_stop_does_not_wait_for_delayed_or_idle_connections() -> None:
    server = FakeLLM(Reply("never", delay=30)).start()
    client = httpx.Client()  # keeps an idle keep-alive connection too
    client.get(f"{server.base_url}/models")
    errors: list[Exception] = []

    def call() -> None:
        try:
            client.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": []}, timeout=60)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2.0
    t.join(5)
    assert not t.is_alive() and errors
    client.close()
