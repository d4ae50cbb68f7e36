"""The prompts of the synthetic retrieval data pipeline, in Chinese, and the knobs they are filled with.

Two steps, as in E5-mistral (Wang et al. 2023, "Improving Text Embeddings with Large Language Models"),
whose prompts inspired the shape of these; the wording is ours and written for Chinese data:

1. :data:`BRAINSTORM_PROMPT`: ask for ``n`` retrieval tasks of one domain, as a JSON list of strings;
2. :data:`EXAMPLE_PROMPT`: for one task, ask for one JSON object ``{query, positive, hard_negative}``,
   with the query's kind, length, clarity and the reading level drawn per example from the lists below
   (seeded; see :func:`piccolo_lib.synth.plan_examples`), so the data set is not one style of query.

Everything a prompt may change lives in this file: edit it here and nowhere else. A changed prompt
changes the requests but not the ids of the examples, so bump :data:`PROMPT_VERSION` and write to a new
output folder (the ids include it) rather than mixing two prompt versions in one file.

Introduced in notebooks/10_synthetic_data.ipynb.
"""

from __future__ import annotations

PROMPT_VERSION = "v1"

# Domains brainstormed by default: close to C-MTEB's retrieval sets (e-commerce, medicine, video,
# news, finance, law, education, daily life) and to data_samples/.
DEFAULT_DOMAINS = ("电商购物", "医疗健康", "金融理财", "法律政务", "教育考试", "新闻资讯", "旅游出行", "餐饮美食")

BRAINSTORM_PROMPT = """你是一名构建中文检索评测集的专家。请围绕“{domain}”领域，头脑风暴出 {n} 个彼此不同、在实际中有用的文本检索任务。

每个任务用一句话描述：用户带着什么样的查询，想从什么样的文档中找到什么信息。例如：“给定一个关于药品用法的提问，检索说明书中回答该问题的段落”。

要求：
- 任务之间的查询类型、文档类型和意图要尽量不同；
- 只用简体中文；
- 只输出一个 JSON 字符串列表，例如 ["任务一", "任务二"]，不要输出任何其他内容。"""

EXAMPLE_PROMPT = """你的任务是为下面这个中文检索任务编写一个训练样例。

检索任务：{task}

请写出：
- "query"：一个用户查询，形式为{query_type}，长度{query_length}，表达{clarity}；
- "positive"：一段能直接回答或满足该查询的文档，长度{passage_length}；
- "hard_negative"：一段与查询主题相近、用词相似，但并不能回答该查询的文档，长度{passage_length}。

要求：
- 理解查询和文档需要{difficulty}的知识；
- 文档要像真实网页、百科或说明中的段落，不要照抄查询中的原话，也不要出现“正例”“负例”等字样；
- 三个字段都只用简体中文，内容不能为空，正例和负例不能相同；
- 只输出一个 JSON 对象，包含且仅包含 "query"、"positive"、"hard_negative" 三个键，不要输出任何其他内容。"""

# The knobs drawn per example (E5-mistral varies query type, length, clarity and difficulty the same way).
QUERY_TYPES = ("疑问句", "几个关键词的组合", "陈述句形式的需求描述")
QUERY_LENGTHS = ("少于 5 个字", "5 到 15 个字", "15 个字以上")
CLARITIES = ("清晰明确", "需要稍加理解才能明白", "较为含糊")
PASSAGE_LENGTHS = ("50 字左右", "100 字左右", "200 字左右")
DIFFICULTIES = ("高中水平", "大学水平", "专业人士水平")

KNOBS = {"query_type": QUERY_TYPES, "query_length": QUERY_LENGTHS, "clarity": CLARITIES,
         "passage_length": PASSAGE_LENGTHS, "difficulty": DIFFICULTIES}
FIELDS = ("query", "positive", "hard_negative")  # the keys every generated object must have
