"""The EntiGraph paper's definitions, written out for tests to compare synthlm against.

Prompt strings and QA few-shot text are copied verbatim from github.com/ZitongYang/
Synthetic_Continued_Pretraining (Apache-2.0): ``utils/prompt_utils.py``; the request and prompt
layouts below are re-implemented here from ``data/entigraph.py``, ``inference/devapi.py``,
``tasks/quality.py`` and ``inference/llama.py`` of the same repository, independently of
synthlm's code.
"""

from __future__ import annotations

import itertools

OPENAI_API_SYSTEM_QUALITY_GENERATE_ENTITIES = """
As a knowledge analyzer, your task is to dissect and understand an article provided by the user. You are required to perform the following steps:
1. Summarize the Article: Provide a concise summary of the entire article, capturing the main points and themes.
2. Extract Entities: Identify and list all significant "nouns" or entities mentioned within the article. These entities should include but not limited to:
    * People: Any individuals mentioned in the article, using the names or references provided.
    * Places: Both specific locations and abstract spaces relevant to the content.
    * Object: Any concrete object that is referenced by the provided content.
    * Concepts: Any significant abstract ideas or themes that are central to the article's discussion.

Try to exhaust as many entities as possible. Your response should be structured in a JSON format to organize the information effectively. Ensure that the summary is brief yet comprehensive, and the list of entities is detailed and accurate.

Here is the format you should use for your response:

{
  "summary":  "<A concise summary of the article>",
  "entities": ["entity1", "entity2", ...]
}
"""

OPENAI_API_SYSTEM_QUALITY_GENERATE_TWO_ENTITY_RELATIONS = """
You will act as a knowledge analyzer tasked with dissecting an article provided by the user. Your role involves two main objectives:
1. Rephrasing Content: The user will identify two specific entities mentioned in the article. You are required to rephrase the content of the article twice:
    * Once, emphasizing the first entity.
    * Again, emphasizing the second entity.
2. Analyzing Interactions: Discuss how the two specified entities interact within the context of the article.

Your responses should provide clear segregation between the rephrased content and the interaction analysis. Ensure each section of the output include sufficient context, ideally referencing the article's title to maintain clarity about the discussion's focus.
Here is the format you should follow for your response:

### Discussion of <title> in relation to <entity1>
<Rephrased content focusing on the first entity>

### Discussion of <title> in relation to <entity2>
<Rephrased content focusing on the second entity>

### Discussion of Interaction between <entity1> and <entity2> in context of <title>
<Discussion on how the two entities interact within the article>
"""

OPENAI_API_SYSTEM_QUALITY_GENERATE_THREE_ENTITY_RELATIONS = """
You will act as a knowledge analyzer tasked with dissecting an article provided by the user. Your role involves three main objectives:
1. Rephrasing Content: The user will identify three specific entities mentioned in the article. You are required to rephrase the content of the article three times:
    * Once, emphasizing the first entity.
    * Again, emphasizing the second entity.
    * Lastly, emphasizing the third entity.
2. Analyzing Interactions: Discuss how these three specified entities interact within the context of the article.

Your responses should provide clear segregation between the rephrased content and the interaction analysis. Ensure each section of the output include sufficient context, ideally referencing the article's title to maintain clarity about the discussion's focus.
Here is the format you should follow for your response:

### Discussion of <title> in relation to <entity1>
<Rephrased content focusing on the first entity>

### Discussion of <title> in relation to <entity2>
<Rephrased content focusing on the second entity>

### Discussion of <title> in relation to <entity3>
<Rephrased content focusing on the third entity>

### Discussion of Interaction between <entity1>, <entity2> and <entity3> in context of <title>
<Discussion on how the three entities interact within the article>
"""

QUALITY_FEW_SHOT_COT_PROMPT = """## Example 1
### Question
In the context of "Les Misérables", written by Victor Hugo in 1862, what is the main setting of the novel? There is only one correct choice.
### Choices
A. London
B. Madrid
C. Paris
D. Rome
### Thought Process and Answer
Thought process: "Les Misérables" is primarily set in Paris, making C the correct choice. London, Madrid, and Rome are significant cities in other literary works but not in Victor Hugo's "Les Misérables". There is only one correct choice.
Answer: C.

## Example 2
### Question
In the context of "Brave New World", written by Aldous Huxley in 1932, what substance is widely used in the society to control citizens' happiness? There is only one correct choice.
### Choices
A. Gold
B. Soma
C. Silver
D. Iron
### Thought Process and Answer
Thought process: In Aldous Huxley's "Brave New World," Soma is used as a means to maintain social control by ensuring citizens' happiness, making B the correct choice. Gold, Silver, and Iron are not the substances used for this purpose in the book.
Answer: B.

## Example 3
### Question
In the context of "Romeo and Juliet", written by William Shakespeare in the early 1590s, what are the names of the two feuding families? There is only one correct choice.
Choices:
A. Montague and Capulet
B. Bennet and Darcy
C. Linton and Earnshaw
D. Bloom and Dedalus
### Thought Process and Answer
Thought process: In William Shakespeare's "Romeo and Juliet," the two feuding families are the Montagues and the Capulets, making A the correct choice. The Bennets and Darcys are in "Pride and Prejudice", the Lintons and Earnshaws in "Wuthering Heights", and Bloom and Dedalus in "Ulysses".
Answer: A.

## Example 4
### Question
In the context of "1984", written by George Orwell in 1949, what is the name of the totalitarian leader? There is only one correct choice.
### Choices
A. Big Brother
B. O'Brien
C. Winston Smith
D. Emmanuel Goldstein
### Thought Process and Answer
Thought process: In George Orwell's "1984," the totalitarian leader is known as Big Brother, making A the correct choice. O'Brien is a character in the novel, Winston Smith is the protagonist, and Emmanuel Goldstein is a rebel leader.
Answer: A.

## Example 5
### Question
In the context of "Moby-Dick", written by Herman Melville in 1851, what is the name of the ship's captain obsessed with hunting the titular whale? There is only one correct choice.
### Choices
A. Captain Hook
B. Captain Nemo
C. Captain Flint
D. Captain Ahab
### Thought Process and Answer
Thought process: In Herman Melville's "Moby-Dick," the ship's captain obsessed with hunting the whale is Captain Ahab, making D the correct choice. Captain Nemo is in "Twenty Thousand Leagues Under the Sea", Captain Flint in "Treasure Island", and Captain Hook in "Peter Pan".
Answer: D.

## Example 6
"""


# -- re-implementation of the original's request and prompt layouts -----------------------


def format_name(name: str) -> str:
    parts = name.split(",")
    return f"{parts[1].strip()} {parts[0].strip()}" if len(parts) == 2 else name.strip()


def article_content(title: str, author: str, year: str, text: str) -> str:
    """``QuALITYArticle.content``."""
    return f'"{title}", {format_name(author)}, {year}.' + f"\n {text}"


def entity_request(model: str, content: str) -> dict:
    """``generate_entities`` -> ``gptqa(json_format=True)``: the body sent to chat.completions."""
    prompt = f"""
    ### Document Content:
    {content}
    """
    return {
        "model": model,
        "temperature": 1.0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": OPENAI_API_SYSTEM_QUALITY_GENERATE_ENTITIES},
            {"role": "user", "content": prompt},
        ],
    }


def relation_request(model: str, content: str, entities: tuple[str, ...]) -> dict:
    """``generate_two/three_entity_relations`` -> ``gptqa`` (no JSON mode, no max_tokens)."""
    listed = "".join(f"    - {e}\n" for e in entities)
    prompt = f"""
    ### Document Content:
    {content}
    ### Entities:
{listed}    """
    system = (
        OPENAI_API_SYSTEM_QUALITY_GENERATE_TWO_ENTITY_RELATIONS
        if len(entities) == 2
        else OPENAI_API_SYSTEM_QUALITY_GENERATE_THREE_ENTITY_RELATIONS
    )
    return {
        "model": model,
        "temperature": 1.0,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
    }


def all_follow_ups(entities: list[str]) -> list[tuple[str, ...]]:
    """Every pair, then every triple (the original shuffles the triples; order is not content)."""
    return list(itertools.combinations(entities, 2)) + list(itertools.combinations(entities, 3))


def qa_prompt(title: str, author: str, year: str, question: str, options: list[str]) -> str:
    """``QUALITY_FEW_SHOT_COT_PROMPT`` + ``QuALITYQuestion.prompt(context, True, "\\n")``."""
    context = f'In the context of "{title}", written by {format_name(author)} in {year},'
    body = f"### Question\n{context} {question[0].lower() + question[1:]} There is only one correct choice.\n"
    body += "### Choices\n" + "".join(f"{chr(65 + i)}. {o}\n" for i, o in enumerate(options))
    body += "### Thought Process and Answer\nThought process:"
    return QUALITY_FEW_SHOT_COT_PROMPT + body


def answer_strings() -> list[str]:
    """``generate_all_answer_strings``: the stop strings of the QA sampling."""
    return [
        f"Answer: {''.join(p)}.\n" for r in range(1, 5) for p in itertools.permutations("ABCD", r)
    ]


def parse_answer(text: str) -> int | None:
    """``second_last_character``: the letter before the final '.'."""
    try:
        return {"A": 0, "B": 1, "C": 2, "D": 3}[text.rstrip("\n")[-2]]
    except (KeyError, IndexError):
        return None


def pick_prediction(outputs: list[tuple[str, str | None, float]]) -> int | None:
    """The answer the paper scores for one question, from its vLLM outputs.

    ``outputs``: one ``(text, stop_reason, cumulative_logprob)`` per sample, in the order drawn.
    vLLM 0.5.3.post1 (requirements.txt) returns a request's samples sorted by cumulative
    log-probability, highest first (``vllm/outputs.py``, ``RequestOutput.from_seq_group``:
    ``sorted(seqs, key=lambda seq: seq.get_cumulative_logprob(), reverse=True)``);
    ``inference/llama.py`` keeps ``text + stop_reason`` of those that stopped on an answer
    string, in that order; ``majority_vote(n_samples=1)`` (``tasks/quality.py``, called in
    ``notebooks/nb_qa_eval.ipynb``) keeps the first; ``llama_parse_answer`` parses it.
    """
    ranked = sorted(outputs, key=lambda output: output[2], reverse=True)
    attempts = [text + stop for text, stop, _ in ranked if stop]
    return parse_answer(attempts[0]) if attempts else None
