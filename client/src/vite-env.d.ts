// Vite lets modules import CSS files; tell TypeScript so.
declare module "*.css";
