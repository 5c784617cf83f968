"""The rows of ../shared/data/benchmarks/ (id, question, options {"A": ...}, answer: the right option's key) in the
schema of the Hub datasets that lm-eval's stock tasks read, so that the stock tasks' own doc_to_text, doc_to_target
and doc_to_choice apply to them unchanged (each YAML here names a stock task and overrides only where its data is).

The YAMLs are read by `make benchmark`, or by lm-eval itself from the repository root:
    lm-eval run --model hf --model_args pretrained=MODEL --tasks eval/tasks
"""

MMLU_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)


def _index(doc) -> int:
    return sorted(doc["options"]).index(doc["answer"])


def _options(doc) -> list[str]:
    return [doc["options"][key] for key in sorted(doc["options"])]


def medqa_4options(dataset):
    """GBaker/MedQA-USMLE-4-options-hf: sent1 (the question), ending0..3, label (0-3)."""

    def convert(doc):
        endings = {f"ending{i}": text for i, text in enumerate(_options(doc))}
        return {"sent1": doc["question"], **endings, "label": _index(doc)}

    return dataset.map(convert)


def medmcqa(dataset):
    """medmcqa (validation): question, opa..opd, cop (0-3)."""

    def convert(doc):
        opa, opb, opc, opd = _options(doc)
        return {"opa": opa, "opb": opb, "opc": opc, "opd": opd, "cop": _index(doc)}

    return dataset.map(convert)


def pubmedqa(dataset):
    """bigbio/pubmed_qa, pubmed_qa_labeled_fold0_source, test: QUESTION, CONTEXTS (the abstract's sections),
    final_decision (yes/no/maybe). Only the official 500-question test set (split "test"). The file holds each
    abstract as one paragraph, so CONTEXTS is that one paragraph: where the Hub's prompt puts a newline between
    sections, this one has the space the file has."""

    def convert(doc):
        return {
            "QUESTION": doc["question"],
            "CONTEXTS": [doc["context"]],
            "final_decision": doc["options"][doc["answer"]],
        }

    return dataset.filter(lambda doc: doc["split"] == "test").map(convert)


def _mmlu(subject):
    def process(dataset):
        """cais/mmlu (test): question, subject, choices, answer (0-3)."""

        def convert(doc):
            return {"choices": _options(doc), "answer": _index(doc)}

        return dataset.filter(lambda doc: doc["subject"] == subject).map(convert)

    process.__name__ = f"mmlu_{subject}"
    return process


for _subject in MMLU_SUBJECTS:
    globals()[f"mmlu_{_subject}"] = _mmlu(_subject)
