"""Speech models beside the text engine: Whisper (faster-whisper) hears ``input_audio``,
Piper speaks answers. Each implements a protocol of ``chatport.protocol.speech``."""
