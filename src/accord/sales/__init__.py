"""Sales: leads and their capture, qualification and scoring; pipelines, deals and forecasts;
activities, reminders and notifications."""
