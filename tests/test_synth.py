"""piccolo_lib.synth: parsing, checks, dedup, resume, rate limit and counts, against a real local HTTP
server that answers like an OpenAI-compatible endpoint, and the offline decoder through transformers.

The server's replies are written here (rows of data_samples/train/retrieval.jsonl and deliberately broken
ones): the tests check the pipeline's bookkeeping, not the prose.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from piccolo_lib.data import load_train_sets, read_jsonl
from piccolo_lib.synth import SynthConfig, read_journal, run_synth
from piccolo_lib.synth_backends import HTTPBackend, RateLimiter, SynthError
from piccolo_lib.synth_cli import load_config
from piccolo_lib.synth_filters import (check_triple, cjk_share, consistency_ranks, dedup, normalize_text,
                                       parse_json_reply, parse_tasks)
from piccolo_lib.synth_standin import StandInEndpoint

REPO = Path(__file__).resolve().parent.parent
ROWS = read_jsonl(REPO / "data_samples" / "train" / "retrieval.jsonl")
# rows whose query and positive are unique (normalised), so every good reply survives dedup
POOL = [{"query": r["text"], "positive": r["text_pos"], "hard_negative": r["text_neg"][0]} for r in ROWS]
POOL = [t for t, keep in zip(POOL, dedup(POOL)) if keep]

# task text -> how the server answers a generation request for it
BEHAVIOUR = {
    "给定购物问题，检索回答它的客服说明": "good",
    "给定健康问题，检索解答它的科普段落": "good",
    "给定理财问题，检索解释它的知识文章": "fenced",
    "给定法律问题，检索相关的法规条文": "malformed",
    "给定旅游问题，检索相关的出行攻略": "missing",
    "给定菜谱问题，检索对应的做法说明": "empty",
    "给定教育问题，检索相关的政策解读": "english",
    "给定数码问题，检索相关的产品评测": "same",
    "给定新闻标题，检索对应的新闻正文": "dup",
    "给定保险问题，检索相关的条款解释": "flaky500",
    "给定汽车问题，检索相关的保养建议": "slow",
    "给定房产问题，检索相关的交易流程": "down",
}
EXAMPLES = 3  # per task
TIMEOUT, SLOW = 0.4, 1.0  # client timeout (s); the slow task's first answer takes longer


class Script:
    """The stand-in's replies: deterministic per request seed; retries of one seed are counted."""

    def __init__(self, behaviour=BEHAVIOUR):
        self.behaviour = behaviour
        self.index, self.attempts = {}, {}
        self.lock = threading.Lock()

    def __call__(self, body):
        prompt, seed = body["messages"][-1]["content"], body["seed"]
        with self.lock:
            attempt = self.attempts[seed] = self.attempts.get(seed, 0) + 1
        if "头脑风暴" in prompt:
            if "“坏领域”" in prompt:
                return "好的，以下是一些任务：1. 购物问答 2. 健康问答"
            return json.dumps(list(self.behaviour), ensure_ascii=False)
        kind = next(k for t, k in self.behaviour.items() if f"检索任务：{t}" in prompt)
        with self.lock:
            row = POOL[self.index.setdefault(seed, len(self.index))]
        if kind == "down" or (kind == "flaky500" and attempt == 1):
            return 500, "internal error"
        if kind == "slow" and attempt == 1:
            time.sleep(SLOW)
        return reply_for(kind, row)


def reply_for(kind, row):
    if kind == "fenced":
        return "以下是样例：\n```json\n" + json.dumps(row, ensure_ascii=False) + "\n```"
    if kind == "malformed":
        return json.dumps(row, ensure_ascii=False)[:-5]
    if kind == "missing":
        return json.dumps({"query": row["query"], "positive": row["positive"]}, ensure_ascii=False)
    if kind == "empty":
        return json.dumps({**row, "hard_negative": "  "}, ensure_ascii=False)
    if kind == "english":
        return json.dumps({"query": "how long to steam a fish", "positive": "Steam it for eight minutes.",
                           "hard_negative": "Choose a fresh fish."})
    if kind == "same":  # equal after NFKC, case and whitespace normalisation
        return json.dumps({**row, "hard_negative": " " + row["positive"].replace("，", ",") + " "}, ensure_ascii=False)
    if kind == "dup":
        return json.dumps(POOL[-1], ensure_ascii=False)
    return json.dumps(row, ensure_ascii=False)


def config(out, url, **kw):
    base = dict(out_dir=str(out), url=url, model="stand-in", domains=("测试领域", "坏领域"),
                tasks_per_domain=len(BEHAVIOUR), examples_per_task=EXAMPLES, batch_size=6, timeout=TIMEOUT,
                max_retries=2, backoff=0.01, filter_model=None, progress=False)
    return SynthConfig(**{**base, **kw})


def lines(path):
    return Path(path).read_text(encoding="utf-8").splitlines()


# ---------- checks on single replies ----------

@pytest.mark.parametrize("reply,reason", [
    ('{"query": "鱼蒸几分钟", "positive": "大火蒸八分钟。", "hard_negative": "选鲈鱼更嫩。"}', None),
    ('```json\n{"query": "鱼蒸几分钟", "positive": "大火蒸八分钟。", "hard_negative": "选鲈鱼更嫩。"}\n```', None),
    ('{"query": "iPhone 15 电池续航", "positive": "续航约二十小时。", "hard_negative": "屏幕为六点一英寸。"}', None),
    ('{"query": "鱼蒸几分钟", "positive": "大火蒸八分钟。"', "malformed_json"),
    ('好的：{"query": "鱼", "positive": "蒸", "hard_negative": "煮"}', "malformed_json"),
    ('["鱼", "蒸", "煮"]', "malformed_json"),
    ("", "malformed_json"),
    ('{"query": "鱼蒸几分钟", "positive": "大火蒸八分钟。"}', "missing_field"),
    ('{"query": "鱼蒸几分钟", "positive": ["大火蒸八分钟。"], "hard_negative": "选鲈鱼。"}', "missing_field"),
    ('{"query": "鱼蒸几分钟", "positive": "  ", "hard_negative": "选鲈鱼。"}', "empty_text"),
    ('{"query": "steam fish", "positive": "大火蒸八分钟。", "hard_negative": "选鲈鱼。"}', "not_chinese"),
    ('{"query": "鱼蒸几分钟", "positive": "大火蒸 8 分钟。", "hard_negative": "大火蒸  ８ 分钟。"}', "positive_equals_negative"),
])
def test_check_triple_names_one_reason(reply, reason):
    triple, got = check_triple(reply)
    assert got == reason
    assert (triple is None) == (reason is not None)


def test_normalisation_cjk_share_and_tasks():
    assert normalize_text(" ＡＢＣ  公司\n") == normalize_text("abc 公司") == "abc 公司"
    assert cjk_share("iPhone 15 电池续航") == pytest.approx(4 / 12)
    assert cjk_share("，。！ ") == 0.0
    assert parse_json_reply('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_reply("not json") is None
    assert parse_tasks('["检索任务甲", "  ", "retrieve English docs", "检索任务甲 ", 5]') == ["检索任务甲"]
    assert parse_tasks('{"tasks": ["检索任务乙"]}') == ["检索任务乙"]
    assert parse_tasks("1. 检索任务甲") is None
    a, b = {"query": "Ｑ 问题", "positive": "段落一"}, {"query": "q  问题", "positive": "段落二"}
    c = {"query": "另一个问题", "positive": "段落一 "}
    assert dedup([a, b, c, {"query": "新问题", "positive": "段落三"}]) == [True, False, False, True]


# ---------- the pipeline against a real local server ----------

def test_pipeline_counts_every_outcome(tmp_path, monkeypatch):
    monkeypatch.setenv("PICCOLO_SYNTH_API_KEY", "sk-test")
    script = Script()
    with StandInEndpoint(script) as ep:
        stats = run_synth(config(tmp_path, ep.url))
    n = len(BEHAVIOUR) * EXAMPLES
    assert stats["brainstorm"] == {"domains": 2, "replied": 2, "malformed": 1}
    assert stats["planned"] == n and stats["tasks"] == len(BEHAVIOUR)
    assert stats["generated"] == n - EXAMPLES and stats["pending"] == EXAMPLES  # the "down" task
    assert stats["dropped"] == {"malformed_json": 3, "missing_field": 3, "empty_text": 3, "not_chinese": 3,
                                "positive_equals_negative": 3, "duplicate": 2, "inconsistent": 0}
    assert stats["kept"] == 3 + 3 + 3 + 1 + 3 + 3  # good x2, fenced, dup (first only), flaky, slow
    assert stats["this_run"] == {"requests": 2 + n, "failed": EXAMPLES, "last_error": "HTTP 500: internal error"}
    assert stats["generated"] == stats["kept"] + sum(stats["dropped"].values())
    assert json.loads((tmp_path / "stats.json").read_text(encoding="utf-8")) == stats

    # retries: the flaky and slow seeds were asked twice, the down ones 1 + max_retries times, others once;
    # the bad domain's brainstorm (not a task list) 1 + max_retries times, each with a new seed
    per_kind = {}
    for seed, count in script.attempts.items():
        per_kind.setdefault(count, 0)
        per_kind[count] += 1
    assert per_kind == {1: 2 + 2 + n - 3 * EXAMPLES, 2: 2 * EXAMPLES, 3: EXAMPLES}
    assert stats["brainstorm_failed_replies"] == {"empty_reply": 0, "cut_off": 0, "malformed_tasks": 1}
    assert stats["failed_replies"] == {"empty_reply": 0, "cut_off": 0, "malformed_tasks": 0}
    assert all(h.get("Authorization") == "Bearer sk-test" and b["model"] == "stand-in" for _, b, h in ep.log)

    rows = read_jsonl(tmp_path / "retrieval.jsonl")
    assert len(rows) == stats["kept"]
    assert all(set(r) == {"text", "text_pos", "text_neg", "type"} and len(r["text_neg"]) == 1 for r in rows)
    (ds,) = load_train_sets(tmp_path / "retrieval.jsonl", neg_num=1)  # what `piccolo data validate` runs
    assert ds.task_type == "retri_contrast" and len(ds.dataset) == stats["kept"]
    logged = read_journal(tmp_path / "generations.jsonl")
    assert len(logged) == len({r["id"] for r in logged}) == stats["generated"]


def test_resume_after_a_budget_stop_gives_the_same_rows(tmp_path):
    script = Script()
    with StandInEndpoint(script) as ep:
        full = run_synth(config(tmp_path / "a", ep.url))
        part = run_synth(config(tmp_path / "b", ep.url, limit=10))  # 2 brainstorms + 8 examples
        assert part["generated"] == 8 and part["pending"] == full["planned"] - 8
        rest = run_synth(config(tmp_path / "b", ep.url))
        again = run_synth(config(tmp_path / "b", ep.url))  # only the never-answered "down" requests are asked
    assert rest["generated"] == full["generated"]
    assert again["this_run"]["requests"] == again["this_run"]["failed"] == EXAMPLES
    for name in ("retrieval.jsonl", "tasks.jsonl"):
        assert lines(tmp_path / "a" / name) == lines(tmp_path / "b" / name)
    logged = [json.loads(x)["id"] for x in lines(tmp_path / "b" / "generations.jsonl")]
    assert len(logged) == len(set(logged)) == full["generated"]
    assert sorted(logged) == sorted(json.loads(x)["id"] for x in lines(tmp_path / "a" / "generations.jsonl"))
    assert {k: v for k, v in rest.items() if k != "this_run"} == {k: v for k, v in full.items() if k != "this_run"}


def test_rows_follow_the_plan_whatever_order_replies_arrived_in(tmp_path):
    """Two tasks give the same query with different positives; dedup keeps the one planned first, even when
    the first task's requests failed in run 1 and were answered only in run 2 (after the second task's)."""
    first, second = "给定问题，检索第一种答案", "给定问题，检索第二种答案"
    q = POOL[0]["query"]
    rows = {first: {**POOL[1], "query": q}, second: {**POOL[2], "query": q}}
    gate = {"open": False}

    def respond(body):
        task = first if first in body["messages"][-1]["content"] else second
        if task == first and not gate["open"]:
            return 503, "busy"
        return json.dumps(rows[task], ensure_ascii=False)

    with StandInEndpoint(respond) as ep:
        kw = dict(tasks=(first, second), examples_per_task=1, max_retries=0)
        gate["open"] = True
        run_synth(config(tmp_path / "straight", ep.url, **kw))
        gate["open"] = False
        assert run_synth(config(tmp_path / "resumed", ep.url, **kw))["this_run"]["failed"] == 1
        gate["open"] = True
        run_synth(config(tmp_path / "resumed", ep.url, **kw))
    arrived = [json.loads(x)["task"] for x in lines(tmp_path / "resumed" / "generations.jsonl")]
    assert arrived == [second, first]
    kept = read_jsonl(tmp_path / "resumed" / "retrieval.jsonl")
    assert [r["text_pos"] for r in kept] == [rows[first]["positive"]]
    assert lines(tmp_path / "resumed" / "retrieval.jsonl") == lines(tmp_path / "straight" / "retrieval.jsonl")


def test_killed_run_resumes_without_writing_a_row_twice(tmp_path):
    good = {t: k for t, k in BEHAVIOUR.items() if k in ("good", "fenced", "dup")}
    n = len(good) * 8
    (tmp_path / "tasks.txt").write_text("\n".join(good) + "\n", encoding="utf-8")
    args = ["data", "synth", "--tasks-file", str(tmp_path / "tasks.txt"), "--examples-per-task", "8",
            "--model", "stand-in", "--filter-model", "none", "--batch-size", "2", "--timeout", "5"]
    from piccolo_lib.cli import main

    with StandInEndpoint(Script(good)) as ep:
        assert main([*args[:2], str(tmp_path / "ref"), "--url", ep.url, *args[2:]]) == 0  # uninterrupted
        env = {**os.environ, "PYTHONPATH": str(REPO), "PICCOLO_SYNTH_URL": ep.url}
        proc = subprocess.Popen([sys.executable, "-m", "piccolo_lib.cli", *args[:2], str(tmp_path / "run"),
                                 "--rate", "8", *args[2:]], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = tmp_path / "run" / "generations.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not log.exists() or len(lines(log)) < 6):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        done = len(lines(log))
        assert 6 <= done < n, "the run was not stopped midway"
        with log.open("ab") as f:  # a line cut off by the kill
            f.write(b'{"id": "0123456789abcdef", "reply": "{\\"query')
        assert main([*args[:2], str(tmp_path / "run"), "--url", ep.url, *args[2:]]) == 0
    ids = [json.loads(x)["id"] for x in lines(log)]
    assert len(ids) == len(set(ids)) == n and "0123456789abcdef" not in ids
    assert lines(tmp_path / "run" / "retrieval.jsonl") == lines(tmp_path / "ref" / "retrieval.jsonl")
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["this_run"]["requests"] == n - done


def test_rate_limit_spaces_requests():
    limiter, t0 = RateLimiter(50), time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - t0 >= 5 / 50  # call i returns no earlier than first + i / rate
    with StandInEndpoint(lambda body: "{}") as ep:
        backend = HTTPBackend(ep.url, "stand-in", rate=20, concurrency=4)
        t0 = time.monotonic()
        assert backend.generate(["提示"] * 12, list(range(12))) == ["{}"] * 12
        took = time.monotonic() - t0
    arrivals = sorted(t for t, _, _ in ep.log)
    assert len(arrivals) == 12 and took >= 11 / 20
    assert arrivals[-1] - arrivals[0] >= 0.8 * 11 / 20  # 4 threads, yet no burst (tolerance: scheduling jitter)
    unlimited = HTTPBackend("http://127.0.0.1:9", "x", rate=None)
    assert unlimited.limiter.interval == 0.0


def test_errors_that_retrying_cannot_fix_stop_the_run(tmp_path):
    with StandInEndpoint(lambda body: (401, "invalid api key")) as ep:
        with pytest.raises(SynthError, match=r"HTTP 401 .*invalid api key.*API key"):
            run_synth(config(tmp_path / "a", ep.url, batch_size=1))
        assert len(ep.log) == 1  # not retried, and no further request
    with StandInEndpoint(lambda body: (503, "overloaded")) as ep:
        with pytest.raises(SynthError, match=r"4 requests in a row failed \(last: HTTP 503: .*overloaded.*re-run"):
            run_synth(config(tmp_path / "b", ep.url, tasks=("给定问题检索答案",), max_consecutive_failures=4,
                             batch_size=2, examples_per_task=4))
        assert len(ep.log) == 4 * 3  # 2 batches of 2 requests, 1 + 2 retries each
    assert read_journal(tmp_path / "b" / "generations.jsonl") == []


def test_cli_exits_1_while_requests_are_still_failing(tmp_path, capsys):
    from piccolo_lib.cli import main

    with StandInEndpoint(Script()) as ep:
        args = ["data", "synth", str(tmp_path), "--url", ep.url, "--model", "stand-in", "--domains", "测试领域",
                "--tasks-per-domain", str(len(BEHAVIOUR)), "--examples-per-task", "1", "--filter-model", "none",
                "--timeout", str(TIMEOUT), "--max-retries", "1"]
        assert main(args) == 1
    out, err = capsys.readouterr()
    assert "kept" in out and err.strip().splitlines()[-1] == ("piccolo data synth: 1 of 13 requests failed after retries "
                                             "(last: HTTP 500: internal error); re-run the same command to retry them")


def test_bad_input_gives_one_line_errors(tmp_path, capsys, monkeypatch):
    from piccolo_lib.cli import main
    from piccolo_lib.synth_cli import read_tasks_file

    (tmp_path / "bad.yaml").write_text("tasks_per_domian: 3\n", encoding="utf-8")
    assert main(["data", "synth", str(tmp_path / "o"), "--config", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.yaml: unknown key 'tasks_per_domian'; did you mean 'tasks_per_domain'?" in err
    (tmp_path / "tasks.txt").write_text("# tasks\n给定问题检索答案\nfind English docs\n", encoding="utf-8")
    with pytest.raises(SynthError, match=r"tasks.txt: row 3: task: expected a task described in Chinese"):
        read_tasks_file(tmp_path / "tasks.txt")
    with pytest.raises(SynthError, match=r"key 'examples_per_task': expected an integer >= 1, got 0"):
        load_config(examples_per_task=0)
    for var in ("PICCOLO_SYNTH_URL", "PICCOLO_SYNTH_MODEL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["data", "synth", str(tmp_path / "o"), "--domains", "电商购物"]) == 1
    assert "backend http needs an endpoint and a model: --url" in capsys.readouterr().err
    log = tmp_path / "o" / "generations.jsonl"
    log.write_text('{"id": "a", "reply": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(SynthError, match=r"generations.jsonl: row 2: not valid JSON .*fix or delete that line"):
        read_journal(log)


# ---------- issue 25, defect 5: unusable replies are asked again, within a bound, then logged as failures

def test_null_empty_or_cut_off_replies_are_asked_again_with_new_seeds(tmp_path):
    """They used to be logged as final (and dropped as malformed): now each is asked again with a new seed, at
    most max_retries times, then logged as a failure with its reason, counted in stats and final for a re-run."""
    kinds = {"给定问题，检索答案甲": "null_then_good", "给定问题，检索答案乙": "blank_then_good",
             "给定问题，检索答案丙": "cut_then_good", "给定问题，检索答案丁": "always_cut",
             "给定问题，检索答案戊": "always_null"}
    seeds, lock = {}, threading.Lock()

    def respond(body):
        task = next(t for t in kinds if f"检索任务：{t}" in body["messages"][-1]["content"])
        with lock:
            seeds.setdefault(task, []).append(body["seed"])
            first = len(seeds[task]) == 1
        good = json.dumps(POOL[list(kinds).index(task)], ensure_ascii=False)
        cut = {"content": good[:30], "finish_reason": "length"}
        return {"null_then_good": {"content": None} if first else good, "blank_then_good": " \n" if first else good,
                "cut_then_good": cut if first else good, "always_cut": cut, "always_null": {"content": None}}[kinds[task]]

    cfg = config(tmp_path, "unused", tasks=tuple(kinds), examples_per_task=1, max_retries=2)
    with StandInEndpoint(respond) as ep:
        cfg.url = ep.url
        stats = run_synth(cfg)
        again = run_synth(cfg)
    assert stats["generated"] == stats["kept"] == 3 and stats["pending"] == 0
    assert stats["failed_replies"] == {"empty_reply": 1, "cut_off": 1, "malformed_tasks": 0}
    assert stats["this_run"] == {"requests": 5, "failed": 0}
    assert [len(seeds[t]) for t in kinds] == [2, 2, 2, 3, 3]  # 1 + max_retries at most
    assert all(len(set(s)) == len(s) for s in seeds.values()), "each retry draws a new sample"
    failures = [r for r in read_journal(tmp_path / "generations.jsonl", failures=True) if "failure" in r]
    assert sorted((r["task"][-1], r["failure"], r["attempts"]) for r in failures) == [("丁", "cut_off", 3),
                                                                                    ("戊", "empty_reply", 3)]
    assert again["this_run"] == {"requests": 0, "failed": 0}  # logged failures are outcomes: resumable
    assert {k: v for k, v in again.items() if k != "this_run"} == {k: v for k, v in stats.items() if k != "this_run"}


def test_a_malformed_brainstorm_is_asked_again_and_retry_failed_recovers_its_domain(tmp_path, capsys):
    """A brainstorm reply that is no task list used to lose its whole domain until someone edited tasks.jsonl."""
    tasks = {"测试领域": "给定购物问题，检索回答它的客服说明", "坏领域": "给定健康问题，检索解答它的科普段落"}
    asked, fixed, lock = Counter(), {"坏领域": False}, threading.Lock()

    def respond(body):
        prompt = body["messages"][-1]["content"]
        if "头脑风暴" in prompt:
            domain = next(d for d in tasks if f"“{d}”" in prompt)
            with lock:
                asked[domain] += 1
                malformed = asked[domain] == 1 if domain == "测试领域" else not fixed[domain]
            return "好的，以下是一些任务：1. 购物问答" if malformed else json.dumps([tasks[domain]], ensure_ascii=False)
        return json.dumps(POOL[0 if tasks["测试领域"] in prompt else 1], ensure_ascii=False)

    cfg = config(tmp_path, "unused", domains=tuple(tasks), tasks_per_domain=1, examples_per_task=1)
    with StandInEndpoint(respond) as ep:
        cfg.url = ep.url
        first = run_synth(cfg)
        assert asked == {"测试领域": 2, "坏领域": 3}  # the first domain recovered on its first retry
        assert first["brainstorm"] == {"domains": 2, "replied": 2, "malformed": 1} and first["tasks"] == 1
        assert first["brainstorm_failed_replies"]["malformed_tasks"] == 1
        fixed["坏领域"] = True
        assert run_synth(cfg)["this_run"]["requests"] == 0  # a plain re-run keeps the logged failure
        from piccolo_lib.cli import main

        assert main(["data", "synth", str(tmp_path), "--url", ep.url, "--model", "stand-in", "--domains",
                     ",".join(tasks), "--tasks-per-domain", "1", "--examples-per-task", "1", "--filter-model", "none",
                     "--retry-failed"]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert stats["brainstorm"] == {"domains": 2, "replied": 2, "malformed": 0} and stats["tasks"] == 2
    assert stats["kept"] == 2 and asked["坏领域"] == 4
    log = [(r["domain"], "reply" if "reply" in r else r["failure"])
           for r in read_journal(tmp_path / "tasks.jsonl", failures=True)]
    assert log == [("测试领域", "reply"), ("坏领域", "malformed_tasks"), ("坏领域", "reply")]  # appended, not edited
    assert "2 of 2 domains replied, 0 malformed" in capsys.readouterr().out


def test_transport_retries_back_off_exponentially_and_keep_the_seed():
    """tenacity runs the HTTP retries: 1 + max_retries attempts, backoff * 2**r before retry r, the same seed
    (as the hand-written loop it replaced did: this test passes on both)."""
    with StandInEndpoint(lambda body: (503, "busy")) as ep:
        backend = HTTPBackend(ep.url, "stand-in", max_retries=3, backoff=0.05)
        assert backend.generate(["提示"], [7]) == [None] and backend.last_error == "HTTP 503: busy"
    times = sorted(t for t, _, _ in ep.log)
    assert len(times) == 4 and {b["seed"] for _, b, _ in ep.log} == {7}
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.9 * 0.05 * 2 ** r for r, g in enumerate(gaps)), gaps


def test_offline_decoder_garbage_is_counted_as_malformed(tmp_path):
    """A random-weight decoder through the transformers backend: every reply is garbage (cut off at
    max_new_tokens, or no JSON), none crashes, each ends counted in one place."""
    cfg = SynthConfig(out_dir=str(tmp_path), backend="transformers", model="offline-decoder",
                      domains=("电商购物", "医疗健康"), tasks_per_domain=2, max_new_tokens=24, batch_size=4,
                      max_retries=1, filter_model=None, progress=False)
    stats = run_synth(cfg)
    assert stats["brainstorm"] == {"domains": 2, "replied": 2, "malformed": 2} and stats["planned"] == 0
    cfg.tasks, cfg.examples_per_task = ("给定购物问题，检索客服说明", "给定健康问题，检索科普段落"), 3
    stats = run_synth(cfg)
    failed = sum(stats["failed_replies"].values())
    assert stats["planned"] == 6 == stats["generated"] + failed and stats["pending"] == 0
    assert stats["dropped"]["malformed_json"] == stats["generated"] and stats["kept"] == 0
    assert stats["this_run"] == {"requests": 6, "failed": 0}
    logged = read_journal(tmp_path / "generations.jsonl", failures=True)
    assert len(logged) == 6 and all(isinstance(r.get("reply"), str) or r["attempts"] == 2 for r in logged)
    assert (tmp_path / "retrieval.jsonl").read_text() == ""


@pytest.fixture(scope="module")
def e5():
    from piccolo_lib.synth_filters import load_encoder

    return load_encoder("e5-small")


def test_consistency_filter_drops_an_unrelated_positive(e5, tmp_path):
    from piccolo_lib.synth import request_seed, plan_examples

    good = [dict(t) for t in POOL[:8]]
    # an answer swapped for an unrelated passage: the real answer is only its "hard negative"
    # the unrelated passage: the one sharing the fewest characters with the query (chosen without the encoder)
    far = min(POOL[9:], key=lambda t: len(set(t["positive"]) & set(POOL[8]["query"])) / len(set(t["positive"])))
    swapped = {"query": POOL[8]["query"], "positive": far["positive"], "hard_negative": POOL[8]["positive"]}
    ranks = consistency_ranks(e5, good + [swapped])
    # each hand-written positive is in its query's top 2 (one of them trails its own hard negative)
    assert max(ranks[:8]) <= 1, ranks
    assert ranks[8] >= 2, ranks  # the unrelated "positive" loses to the real answer and more
    assert consistency_ranks(e5, good + [swapped], chunk=2) == ranks  # scored in chunks of queries, same ranks

    cfg = config(tmp_path, "unused", tasks=("给定问题检索答案",), examples_per_task=9, filter_model="e5-small", top_k=2)
    by_seed = {request_seed(s["id"]): json.dumps(t, ensure_ascii=False)
               for s, t in zip(plan_examples([("given", cfg.tasks[0])], cfg), [swapped, *good])}
    with StandInEndpoint(lambda body: by_seed[body["seed"]]) as ep:
        cfg.url = ep.url
        stats = run_synth(cfg, encoder=e5)
    assert stats["kept"] == 8 and stats["dropped"]["inconsistent"] == 1
    assert swapped["query"] not in {r["text"] for r in read_jsonl(tmp_path / "retrieval.jsonl")}
