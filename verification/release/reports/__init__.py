"""The release-gate report: ``report.json`` (schema below), and its Markdown, HTML and JUnit renderings."""
