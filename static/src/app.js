// Shared look of the staff pages (the list, sign-in); the replay page adds its own bundle.
import "./app.css";
