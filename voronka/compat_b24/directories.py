"""Directories and pipelines: ``crm.status.*``, ``crm.category.*``, ``crm.dealcategory.*``, ``crm.stagehistory.list``."""
