"""What each activity does, composed from the layers below; webhooks; fault injection for rehearsals."""
