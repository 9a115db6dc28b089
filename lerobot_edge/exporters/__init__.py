"""Generic graph -> file conversion and validation. Knows no policy: it receives `ExportPlan`s."""
