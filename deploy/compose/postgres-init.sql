-- Runs once, when the postgres volume is first initialised: the analytics warehouse gets its own database
-- (STUDYSHELF_WAREHOUSE_URL), owned by the same role as the app database.
CREATE DATABASE studyshelf_warehouse OWNER studyshelf;
