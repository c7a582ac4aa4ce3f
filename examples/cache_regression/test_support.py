import support


def test_support_prompt_is_cacheable(llm_cache):
    support.answer("How do I rotate an API key?")
    support.answer("Can I export my audit log?")
    llm_cache.assert_cacheable()
