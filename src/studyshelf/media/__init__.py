"""Media processing: HLS renditions, posters, seek-preview sprites, audio transcodes, PDF and image thumbnails."""
