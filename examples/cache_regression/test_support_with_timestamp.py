# Fails on purpose: the timestamp at the top of the system prompt makes every call's prefix new.
import support_with_timestamp as support


def test_support_prompt_is_cacheable(llm_cache):
    support.answer("How do I rotate an API key?")
    support.answer("Can I export my audit log?")
    llm_cache.assert_cacheable()
