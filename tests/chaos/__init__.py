"""The fault suite (`make chaos`): nothing lost, nothing doubled, whatever breaks."""
