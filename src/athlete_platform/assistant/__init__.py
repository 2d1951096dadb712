"""The training-insights assistant (layer 6; README "Assistant", DESIGN.md section 12).

A question about one athlete -> tools that read that athlete's data (feature table, sessions,
notes and knowledge index, race predictions) -> an answer written from the tool results only,
every number with a citation. The composer is deterministic by default
(:mod:`~athlete_platform.assistant.composer`); an OpenAI-compatible LLM can be plugged in
(:mod:`~athlete_platform.assistant.llm`). Entry point: :class:`~athlete_platform.assistant.agent.Assistant`.
"""
